"""Launch flags that open a path into a stub of the slimmed tree.

A stub is a def slim kept by name but emptied: its body raises (slim/check_surface.py `is_stub`).
Kept code reaches one only on a path no recording took, and most such paths open on a launch
flag: `if server_args.enable_lora: ... get_all_adapters()`. At every call whose callee is a stub,
this reads the launch-flag attributes the enclosing conditions test (`server_args.X`,
`self.server_args.X`, `get_global_server_args().X`, `get_exec().moe.X`: an attribute named like a
ServerArgs field on something named `*args*` or on upstream's resolved-config namespaces), with
the string values a condition compares the flag to. A flag set so that the condition holds reaches
the stub: unless the front door refuses that flag (or every value named), a user who sets it gets a
crash deep in the server instead of a refusal.

Calls are matched to stubs by name, so only names no kept def also carries count (a call of
`load` might be any kept `load`), and not the names of builtin-type methods (`items`, `copy`) or
torch's in-place ops (`copy_`, `zero_`): `x.items()` is not a call of a stubbed `items`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from slim.check_surface import is_stub
from slim.flag_registries import accepts, lost_registrations, stubbed_entries
from slim.module_names import module_name, resolve_relative
from slim.syntax import catches_import_error

BUILTIN_METHODS = {name for t in (dict, list, set, str, bytes, tuple, object) for name in dir(t)}


@dataclass(frozen=True)
class Term:
    flag: str  # "--enable-lora"
    values: tuple[str, ...] = ()  # the values a condition compares it to; () for any that holds


@dataclass(frozen=True)
class GuardedStub:
    """A call of a stub under conditions that all must hold, and the launch flags they read."""
    terms: tuple[Term, ...]
    stub: str  # the called name
    where: str  # "sglang/srt/x.py:12"


def _defined(trees: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """(stub names, names of kept defs and classes that are not stubs) over the whole tree."""
    stubs, kept = set(), set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                (stubs if is_stub(node) else kept).add(node.name)
            elif isinstance(node, ast.ClassDef):
                kept.add(node.name)
    return stubs, kept


def stub_names(trees: dict[str, ast.Module]) -> set[str]:
    """The stubs a call can be matched to by name alone."""
    stubs, kept = _defined(trees)
    return {n for n in stubs - kept if n not in BUILTIN_METHODS and not n.endswith("_")}


def _strings(node: ast.expr) -> tuple[str, ...] | None:
    """"a", ("a", "b"), ["a"], {"a"}, LoadFormat.A (its value: "a", configs/load_config.py:17-38), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "LoadFormat":
        return (node.attr.lower(),)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and \
            all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


def flag_terms(condition: ast.expr, dests: dict[str, str], holds: bool = True) -> set[Term]:
    """The launch flags a condition needs set for it to hold (to be false, with `holds=False`):
    compared by `==` or `in` to string constants, with those values; read otherwise (`if
    server_args.x`, `x is not None`, `x != "a"`), with none. A flag read under `not` is needed
    unset: no term."""
    if isinstance(condition, ast.UnaryOp) and isinstance(condition.op, ast.Not):
        return flag_terms(condition.operand, dests, not holds)
    if isinstance(condition, ast.BoolOp):
        if isinstance(condition.op, ast.And) == holds:  # all of them hold (or all fail)
            return set().union(*(flag_terms(v, dests, holds) for v in condition.values))
        return set()  # one of several: none is needed
    if not holds:
        return set()
    if isinstance(condition, ast.Compare) and len(condition.ops) == 1 and \
            isinstance(condition.ops[0], (ast.Eq, ast.In)):
        for attr, other in ((condition.left, condition.comparators[0]), (condition.comparators[0], condition.left)):
            flag, values = _flag_of(attr, dests), _strings(other)
            if flag and values:
                return {Term(flag, values)}
    return {Term(flag) for node in ast.walk(condition) if (flag := _flag_of(node, dests))}


# Upstream's config bags (srt/runtime_context.py): `get_exec().moe.x` reads the ServerArgs field x.
CONFIG_BAGS = re.compile(r"get_(device|disagg|exec|lora|memory|mm|model|observability|parallel|schedule|serving|spec)"
                         r"\(\)(\.\w+)?$")


ENV_READERS = {"get_bool_env_var", "get_int_env_var", "get_float_env_var", "os.environ.get", "os.getenv"}


def _env_of(node: ast.AST) -> str | None:
    """"env:NAME" for a read of an environment variable: `envs.NAME.get()` (upstream's srt/environ.py)
    or `get_bool_env_var("NAME")`, `os.environ.get("NAME")` and the like; None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    func = ast.unparse(node.func)
    if func.startswith("envs.") and func.endswith(".get") and func.count(".") == 2:
        return "env:" + func.split(".")[1]
    if func in ENV_READERS and node.args and isinstance(node.args[0], ast.Constant):
        return f"env:{node.args[0].value}"
    return None


def env_aliases(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to one environment switch's read (`_USE_X = get_bool_env_var("X")`,
    `and`-ed with other tests or not), keyed as _flag_of looks them up: "name:_USE_X" -> "env:X"."""
    aliases = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            envs = {env for node in ast.walk(stmt.value) if (env := _env_of(node))}
            if len(envs) == 1:
                aliases[f"name:{stmt.targets[0].id}"] = envs.pop()
    return aliases


def _flag_of(node: ast.AST, dests: dict[str, str]) -> str | None:
    if env := _env_of(node):
        return env
    if isinstance(node, ast.Name):
        return dests.get(f"name:{node.id}")
    if not (isinstance(node, ast.Attribute) and node.attr in dests):
        return None
    owner = ast.unparse(node.value)  # LoadConfig copies ServerArgs' load fields (model_loader/loader.py)
    return dests[node.attr] if "args" in owner.lower() or CONFIG_BAGS.search(owner) or owner == "load_config" else None


class _Guards(ast.NodeVisitor):
    """The enclosing conditions of each call of a stub and each import of an absent sglang module,
    in one module."""

    def __init__(self, rel: str, stubs: set[str], dests: dict[str, str], out: list[GuardedStub],
                 present: frozenset[str] = frozenset(), attributes: dict[tuple[int, int], str] | None = None) -> None:
        self.rel, self.stubs, self.dests, self.out, self.present = rel, stubs, dests, out, present
        self.attributes = attributes or {}  # (line, column) of an attribute read -> what it reads
        self.conditions: list[tuple[ast.expr, bool]] = []  # (condition, whether it holds there)
        self.optional = 0  # inside a `try:` that catches ImportError: upstream copes with its absence

    def _under(self, condition: ast.expr, holds, otherwise) -> None:
        self.visit(condition)
        self.conditions.append((condition, True))
        self._block(holds)
        self.conditions[-1] = (condition, False)
        self._block(otherwise)
        self.conditions.pop()

    def _block(self, statements) -> None:
        """A statement list; after `if c: return` (raise, continue, break) the rest runs only where
        c is false."""
        depth = len(self.conditions)
        for stmt in statements:
            self.visit(stmt)
            if isinstance(stmt, ast.If) and not stmt.orelse and stmt.body and \
                    isinstance(stmt.body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                self.conditions.append((stmt.test, False))
        del self.conditions[depth:]

    def generic_visit(self, node: ast.AST) -> None:
        for _, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self._block(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_If(self, node: ast.If) -> None:
        self._under(node.test, node.body, node.orelse)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._under(node.test, [node.body], [node.orelse])

    def visit_While(self, node: ast.While) -> None:
        self._under(node.test, node.body, node.orelse)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:  # `a and f()`: f runs only when a holds
        if not isinstance(node.op, ast.And):
            self.generic_visit(node)
            return
        depth = len(self.conditions)
        for value in node.values:
            self.visit(value)
            self.conditions.append((value, True))
        del self.conditions[depth:]

    def _found(self, what: str, line: int) -> None:
        terms = set().union(*(flag_terms(c, self.dests, holds) for c, holds in self.conditions))
        if terms:
            self.out.append(GuardedStub(tuple(sorted(terms, key=lambda t: (t.flag, t.values))), what,
                                        f"{self.rel}:{line}"))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in self.stubs:
            self._found(name, node.lineno)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if what := self.attributes.get((node.lineno, node.col_offset)):
            self._found(what, node.lineno)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = resolve_relative(node.module, node.level, self.rel)
        if self.present and module and module.startswith("sglang.") and module not in self.present \
                and not self.optional:
            self._found(f"import {module}", node.lineno)

    def visit_Try(self, node: ast.Try) -> None:
        optional = catches_import_error(node)
        self.optional += optional
        self._block(node.body)
        self.optional -= optional
        for handler in node.handlers:
            self._block(handler.body)
        self._block(node.orelse)
        self._block(node.finalbody)


def guarded_stubs(trees: dict[str, ast.Module], dests: dict[str, str]) -> list[GuardedStub]:
    """Every stub call, and every import of an sglang module the tree lacks (outside a `try:` that
    catches ImportError), under a condition on launch flags; `trees` maps a path to its parsed module,
    `dests` a ServerArgs field to its flag ("enable_lora" -> "--enable-lora")."""
    stubs = stub_names(trees)
    modules = {module_name(rel) for rel in trees}  # and their packages, `__init__.py` or not
    present = frozenset(modules | {m.rsplit(".", i)[0] for m in modules for i in range(1, m.count(".") + 1)})
    out: list[GuardedStub] = []
    for rel, tree in sorted(trees.items()):
        _Guards(rel, stubs, dests | env_aliases(tree), out, present).visit(tree)
    return sorted(set(out), key=lambda g: (g.where, g.stub))


def guarded_attributes(rel: str, tree: ast.Module, dests: dict[str, str], attributes: dict[tuple[int, int], str],
                       calls: set[str] = frozenset()) -> list[GuardedStub]:
    """The attribute reads at `attributes` ((line, column) -> what it reads, the `stub` of the
    result) and the calls of names in `calls` in one file under a condition on launch flags
    (slim/check_members.py's reads of deleted members, slim/check_overrides.py's constructions)."""
    out: list[GuardedStub] = []
    _Guards(rel, set(calls), dests | env_aliases(tree), out, attributes=attributes).visit(tree)
    return out


def flag_dests(inventory_items: list[dict]) -> dict[str, str]:
    """ServerArgs field -> its flag, from the surface inventory's flag items."""
    return {item["source"].rsplit(".", 1)[-1]: item["name"] for item in inventory_items
            if item["kind"] == "flag" and "::ServerArgs." in item["source"]}


def unrefused(guards: list[GuardedStub], refused: set[str]) -> list[GuardedStub]:
    """Those the front door lets through: every flag they need is accepted."""
    return [g for g in guards if all(accepts(refused, t.flag, t.values) for t in g.terms)]


def needs(guard: GuardedStub) -> str:
    """The flags (and values) the conditions need: "--enable-lora, --x in ['a']"."""
    return ", ".join(t.flag + (f" in {list(t.values)}" if t.values else "") for t in guard.terms)


def flag_errors(trees: dict[str, ast.Module], upstream: dict[str, ast.Module] | None, dests: dict,
                refused: set[str], values: set[str]) -> list[str]:
    """`slim check`'s errors for what the front door accepts: a registered class kept only by name,
    a registration the plan deleted (when upstream's registry files are given), a stub or absent
    module a flag leads to."""
    errors = [f"{item}: the front door accepts it, but its registered class was kept only by name "
              "(refuse it in slim/surface.toml or record it)"
              for item in sorted(set(stubbed_entries(trees, refused)) & values)]
    if upstream is not None:
        errors += [f"{item}: the front door accepts it, but its registration was deleted "
                   "(refuse it in slim/surface.toml or keep the registration)"
                   for item in sorted(set(lost_registrations(trees, upstream, refused)) & values)]
    for g in unrefused(guarded_stubs(trees, dests), refused):
        what = f"imports absent {g.stub[7:]}" if g.stub.startswith("import ") else f"calls stub {g.stub}"
        errors.append(f"{g.where}: {what} when {needs(g)}, which the front door accepts "
                      "(refuse it in slim/surface.toml or keep the code)")
    return errors
