"""Static index of one upstream module, with the stdlib `ast` (fast; libcst only rewrites).

For every function, method and class reachable without entering a function body it records
the qualname and first line exactly as CPython's code object has them (co_qualname,
co_firstlineno: on 3.12 the line of the first decorator), so recordings match by
(qualname, line). It also counts the identifiers each def uses, so the plan can tell
whether anything kept still names a def, and finds the platform probes to fold.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field

from slim.implicit import (
    class_body_implicit,
    def_implicit,
    library_names,
    machinery_implicit,
    override_implicit,
    stdlib_bases,
    stdlib_names,
    third_party_bases,
)
from slim.module_names import (  # noqa: F401 - re-exported: the indexer's public names
    DYNAMIC_IMPORTS,
    MODULE_STRING,
    import_targets,
    module_name,
    resolve_relative,
    string_modules,
)
from slim.platform_names import PlatformPruner, platform_names
from slim.syntax import compound_bodies, dotted, first_line, module_statements

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # identifiers inside string constants (getattr, annotations)


def identifier_lines(node: ast.AST | None) -> list[tuple[int, str]]:
    """(line, identifier) for every identifier a subtree uses: names, attributes, imported names,
    words in strings (getattr, string annotations); sorted by line."""
    return scan(node).idents if node is not None else []


@dataclass
class Scan:
    """One walk over a module: what every line uses and which modules it loads."""
    idents: list[tuple[int, str]]  # (line, identifier), sorted
    modules: list[tuple[int, str]]  # (line, module) an import there may load or a string there names, sorted
    computed_imports: bool  # import_module/__import__ called with a name it computes
    calls: list[tuple[int, str]] = field(default_factory=list)  # (line, name) called there: `f()`, `x.f()`
    # sglang modules an import binds as an object, whose attributes may then be read: `import m`,
    # `from package import m`, and the module of a star import (its names flow on)
    namespaces: set[str] = field(default_factory=set)
    # (line, "Base.attr") of every read of a name's attribute: `EventPublisherFactory.create`,
    # `self._socket_setup` (slim/reach_rules.py keeps the class members kept code so reads)
    member_reads: list[tuple[int, str]] = field(default_factory=list)


def scan(tree: ast.AST, path: str = "") -> Scan:
    idents: list[tuple[int, str]] = []
    modules: list[tuple[int, str]] = []
    calls: list[tuple[int, str]] = []
    reads: list[tuple[int, str]] = []
    namespaces: set[str] = set()
    computed = False
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Call) and (callee := dotted(sub.func)):
            calls.append((sub.lineno, callee.rsplit(".", 1)[-1]))
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and isinstance(sub.ctx, ast.Load):
            reads.append((sub.lineno, f"{sub.value.id}.{sub.attr}"))
        if isinstance(sub, ast.Name):
            idents.append((sub.lineno, sub.id))
        elif isinstance(sub, ast.Attribute):
            idents.append((sub.end_lineno, sub.attr))
        elif isinstance(sub, ast.alias):
            idents.extend((sub.lineno, part) for part in sub.name.split(".") + ([sub.asname] if sub.asname else []))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 2000:
            idents.extend((sub.lineno, word) for word in IDENT.findall(sub.value))
            modules.extend((sub.lineno, m) for m in string_modules(sub.value))
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound = import_targets(sub, path)
            modules.extend((sub.lineno, t) for _, targets in bound for t in targets)
            namespaces.update(targets[0] if name == "*" else targets[-1] for name, targets in bound)
        elif isinstance(sub, ast.Call) and sub.args and not isinstance(sub.args[0], ast.Constant) and \
                dotted(sub.func).rsplit(".", 1)[-1] in DYNAMIC_IMPORTS:
            computed = True
    idents.sort()
    modules.sort()
    calls.sort()
    reads.sort()
    return Scan(idents, modules, computed, calls, namespaces, reads)


def _spanned(items: list[tuple[int, str]], lines: list[int], first: int, last: int) -> list[tuple[int, str]]:
    return items[bisect_left(lines, first):bisect_right(lines, last)]


def in_span(items: list[tuple[int, str]], lines: list[int], first: int, last: int) -> list[str]:
    """The values of (line, value) pairs (sorted; `lines` their lines) with first <= line <= last."""
    return [value for _, value in _spanned(items, lines, first, last)]







@dataclass
class Def:
    qualname: str
    line: int  # co_firstlineno
    end: int
    kind: str  # "function" | "method" | "class"
    name: str
    implicit: str | None  # why it is kept whatever the recordings say: "dunder", "@property" (Why.IMPLICIT)
    refs: Counter  # identifiers used by the whole def (decorators and body included)
    parent: str | None = None  # enclosing class qualname
    bases: list[str] = field(default_factory=list)
    own_refs: Counter = field(default_factory=Counter)  # refs less those of the defs nested in it (classes)
    imports: set[str] = field(default_factory=set)  # modules it imports (or names in a string) itself
    decorators: list[str] = field(default_factory=list)  # dotted names: "app.exception_handler"
    body_line: int = 0  # first line of the body: a def whose body starts on a later line can be stubbed
    header_refs: Counter = field(default_factory=Counter)  # refs of its decorators and signature
    # `implicit` as the "lean" plan judges it: only a body whose library calls members by name
    # (MACHINERY_BASES) keeps them all; a dataclass's method stays for its own reasons (a dunder).
    lean_implicit: str | None = None
    declarative: bool = False  # a class whose body is declarations (see DECLARATIVE_BASES)
    calls: list[tuple[int, str]] = field(default_factory=list)  # (line, name) it calls (a class: its methods too)
    member_reads: list[tuple[int, str]] = field(default_factory=list)  # (line, "Base.attr"): see Scan

    @property
    def lines(self) -> int:
        return self.end - self.line + 1



def collect_defs(tree: ast.Module, scanned: Scan | None = None, path: str = "") -> list[Def]:
    """Functions, classes and methods in source order, not entering function bodies, each with
    the identifiers it uses and the modules it imports."""
    out: list[Def] = []
    scanned = scanned or scan(tree, path)
    ident_lines = [line for line, _ in scanned.idents]
    module_lines = [line for line, _ in scanned.modules]
    call_lines = [line for line, _ in scanned.calls]
    read_lines = [line for line, _ in scanned.member_reads]

    def refs_of(node) -> Counter:
        return Counter(in_span(scanned.idents, ident_lines, first_line(node), node.end_lineno))

    def imports_of(node) -> set[str]:
        return set(in_span(scanned.modules, module_lines, first_line(node), node.end_lineno))

    stdlib = stdlib_names(tree) if isinstance(tree, ast.Module) else {}
    libraries = library_names(tree) if isinstance(tree, ast.Module) else {}

    def walk(body, prefix: str, in_class: str | None, class_implicit: str | None, machinery: str | None,
             overridden: list[tuple[str, type]]):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = prefix + node.name
                is_class = isinstance(node, ast.ClassDef)
                kind = "class" if is_class else ("method" if in_class else "function")
                own_implicit = class_body_implicit(node) if is_class else None
                override = override_implicit(node, overridden)
                implicit = def_implicit(node, in_class, class_implicit) or override if not is_class \
                    else class_implicit
                refs = refs_of(node)
                bases = [dotted(b) for b in node.bases] if is_class else []
                body_line = first_line(node.body[0]) if node.body else node.lineno  # folded empty: no stub
                header_end = max(node.lineno, body_line - 1)
                header = Counter(in_span(scanned.idents, ident_lines, first_line(node), header_end))
                d = Def(qualname, first_line(node), node.end_lineno, kind, node.name, implicit, refs, in_class,
                        bases, Counter(refs), imports_of(node), [dotted(x) for x in node.decorator_list],
                        body_line, header,
                        def_implicit(node, in_class, machinery) or override if not is_class else machinery,
                        own_implicit is not None,
                        _spanned(scanned.calls, call_lines, first_line(node), node.end_lineno),
                        _spanned(scanned.member_reads, read_lines, first_line(node), node.end_lineno))
                out.append(d)
                if is_class:
                    start = len(out)
                    walk(node.body, qualname + ".", qualname, own_implicit or class_implicit,
                         machinery_implicit(node, own_implicit, machinery),
                         stdlib_bases(node, stdlib) + third_party_bases(node, libraries))
                    for inner in out[start:]:
                        if inner.parent == qualname:
                            d.own_refs.subtract(inner.refs)
                            d.imports -= inner.imports
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.AsyncWith, ast.AsyncFor)):
                for sub in compound_bodies(node):
                    walk(sub, prefix, in_class, class_implicit, machinery, overridden)

    walk(tree.body, "", None, None, None, [])
    return out


def registry_names(tree: ast.Module) -> Counter:
    """Bare names listed as elements of module-level list/tuple/set/dict literals (registries)."""
    found: Counter = Counter()
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
            found.update(e.id for e in value.elts if isinstance(e, ast.Name))
        elif isinstance(value, ast.Dict):
            found.update(e.id for e in value.values if isinstance(e, ast.Name))
    return found






@dataclass(frozen=True)
class Binding:
    """A name a module-level import binds, and the modules that import may load."""
    name: str  # "*" for a star import
    targets: tuple[str, ...]
    attr: str | None = None  # `from m import attr as name`: the name m must still define


@dataclass
class ModuleIndex:
    path: str
    defs: list[Def]
    refs: Counter  # identifiers used anywhere in the file
    registry: Counter  # names used only as registry literal elements
    helpers: set[str]
    constants: set[str]
    body_refs: Counter = field(default_factory=Counter)  # used by module-level code outside defs and imports
    bindings: list[Binding] = field(default_factory=list)
    exported: set[str] = field(default_factory=set)  # the names listed in __all__
    body_modules: set[str] = field(default_factory=set)  # sglang modules named in module-level strings
    computed_imports: bool = False  # imports modules by names it computes
    # (line, word) of the strings a module-level `register...(...)` call passes: a registry that
    # imports its entry by module and class name (`register_backend("file", "...", "HiCacheFile")`)
    string_registrations: list[tuple[int, str]] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=set)  # see Scan.namespaces


def _is_all(stmt: ast.stmt) -> bool:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)


def module_level(tree: ast.Module, scanned: Scan, path: str):
    """(body refs, import bindings, __all__ names, modules named in strings). Body refs leave out defs
    (they are weighed one by one), imports (bindings, not uses) and `__all__` (pruned when dead)."""
    bindings, skip, exported = [], set(), set()
    for stmt in module_statements(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) \
                or (isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and _is_all(stmt)):
            skip.update(range(first_line(stmt), stmt.end_lineno + 1))
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            bindings.append(Binding("*", import_targets(stmt, path)[0][1][:1]))
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            attrs = [a.name for a in stmt.names] if isinstance(stmt, ast.ImportFrom) else [None] * len(stmt.names)
            bindings += [Binding(name, targets, attr)
                         for (name, targets), attr in zip(import_targets(stmt, path), attrs, strict=True)]
        elif isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and _is_all(stmt):
            exported.update(c.value for c in ast.walk(stmt) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    modules = {module for line, module in scanned.modules if line not in skip}
    # Registry literal elements count: which entry a lookup picks is not recorded (a class can be
    # instantiated through `{"lru": LRUStrategy}` without a method of its own running).
    refs = Counter(name for line, name in scanned.idents if line not in skip)
    return +refs, bindings, exported, modules


def index_module(path: str, source: bytes) -> ModuleIndex:
    """Index one module: its defs, what its module-level code uses and imports, platform probes."""
    tree = ast.parse(source)
    helpers, constants = platform_names(tree, path)
    if helpers or constants:
        tree = PlatformPruner(helpers, constants).visit(tree)
    scanned = scan(tree, path)
    body_refs, bindings, exported, modules = module_level(tree, scanned, path)
    return ModuleIndex(path, collect_defs(tree, scanned, path), Counter(name for _, name in scanned.idents),
                       registry_names(tree), helpers, constants, body_refs, bindings, exported, modules,
                       scanned.computed_imports, string_registrations(tree), scanned.namespaces)


def string_registrations(tree: ast.Module) -> list[tuple[int, str]]:
    """The words of string arguments to module-level `register...(...)` calls, at the call's line."""
    found = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(call, ast.Call) and dotted(call.func).rsplit(".", 1)[-1].startswith("register"):
            found.extend((call.lineno, word) for arg in call.args
                         if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                         for word in IDENT.findall(arg.value))
    return found
