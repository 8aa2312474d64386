"""Static reading of upstream sources: parsed modules by dotted name, and a small evaluator for the
literal values (choice lists, registry keys) that upstream spells as constants, never by importing."""

from __future__ import annotations

import ast
from pathlib import Path


class Source:
    """The upstream tree (the folder holding `sglang/`), parsed on demand, one module at a time."""

    def __init__(self, root: Path):
        self.root = root
        self._memo: dict[tuple[str, str], object] = {}  # (what, module) -> parsed fact; one Source per derivation

    def _once(self, what: str, module: str, compute):
        if (what, module) not in self._memo:
            self._memo[what, module] = compute()
        return self._memo[what, module]

    def path(self, module: str) -> Path:
        base = self.root / Path(*module.split("."))
        return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")

    def rel(self, module: str) -> str:
        return self.path(module).relative_to(self.root).as_posix()

    def tree(self, module: str) -> ast.Module | None:
        path = self.path(module)
        return self._once("tree", module, lambda: ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                          if path.is_file() else None)

    def imports(self, module: str) -> dict[str, tuple[str, str]]:
        """Name bound by `from M import X [as Y]` anywhere in the module -> (M, X)."""
        return self._once("imports", module, lambda: self._imports(module))

    def _imports(self, module: str) -> dict[str, tuple[str, str]]:
        found = {}
        for node in ast.walk(self.tree(module) or ast.Module(body=[], type_ignores=[])):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    found[alias.asname or alias.name] = (node.module, alias.name)
        return found

    def star_imports(self, module: str) -> list[str]:
        """Modules that `module` imports with `from M import *` (package __init__ re-exports)."""
        body = (self.tree(module) or ast.Module(body=[], type_ignores=[])).body
        return self._once("star", module, lambda: [
            node.module for node in body
            if isinstance(node, ast.ImportFrom) and node.module and [a.name for a in node.names] == ["*"]])

    def top_level(self, module: str) -> dict[str, ast.AST]:
        """Module-level assignments and classes by name (the last binding wins, as at import)."""
        return self._once("top", module, lambda: self._top_level(module))

    def _top_level(self, module: str) -> dict[str, ast.AST]:
        bound: dict[str, ast.AST] = {}
        for node in (self.tree(module) or ast.Module(body=[], type_ignores=[])).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                bound[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                bound[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                bound[node.target.id] = node.value
        return bound

    def lookup(self, module: str, name: str) -> tuple[str, ast.AST] | None:
        """Where `name`, as seen from `module`, is defined: (module, node), following `from` imports."""
        for _ in range(8):  # re-export chains are short; a cycle must not hang
            node = self.top_level(module).get(name)
            if node is not None:
                return module, node
            if name not in self.imports(module):
                starred = (self.lookup(star, name) for star in self.star_imports(module))
                return next((found for found in starred if found is not None), None)
            module, name = self.imports(module)[name]
            if self.tree(module) is None:
                return None
        return None


def class_attrs(node: ast.ClassDef) -> dict[str, ast.AST]:
    """A class body's assigned attributes (plain and annotated) by name."""
    attrs: dict[str, ast.AST] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            attrs[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            attrs[stmt.target.id] = stmt.value
    return attrs


class Unresolved(Exception):
    """The expression is not a constant that static reading can know."""


def values_of(src: Source, module: str, node: ast.AST, local: dict[str, ast.AST] | None = None,
              scope: dict[str, ast.AST] | None = None) -> list:
    """The list of constant values `node` evaluates to (a list/tuple/set literal, a name or class attribute
    bound to one, `a + b`, `list(x)`, `sorted(x)`, `d.keys()` of a dict literal); raises Unresolved otherwise.
    `local`: names assigned in the enclosing function; `scope`: the enclosing class body."""
    local, scope = local or {}, scope or {}

    def again(child: ast.AST, where: str = module, new_scope: dict | None = None) -> list:
        return values_of(src, where, child, local if where == module else {}, scope if new_scope is None else new_scope)

    match node:
        case ast.Constant(value=value):
            return [value]
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.Set(elts=elts):
            return [value for elt in elts for value in again(elt)]
        case ast.Dict(keys=keys) if all(key is not None for key in keys):
            return [value for key in keys for value in again(key)]
        case ast.BinOp(left=left, op=ast.Add(), right=right):
            return again(left) + again(right)
        case ast.Call(func=ast.Name(id="list" | "sorted" | "tuple"), args=[arg]):
            return again(arg)
        case ast.Call(func=ast.Attribute(value=owner, attr="keys"), args=[]):
            return again(owner)
        case ast.Name(id=name) if name in local:
            return again(local[name])
        case ast.Name(id=name) if name in scope:
            return again(scope[name])
        case ast.Name(id=name):
            found = src.lookup(module, name)
            if found is None or isinstance(found[1], ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                raise Unresolved(ast.unparse(node))
            return again(found[1], found[0], {})
        case ast.Attribute(value=ast.Name(id=owner), attr=attr):
            found = src.lookup(module, owner)
            if found is None or not isinstance(found[1], ast.ClassDef):
                raise Unresolved(ast.unparse(node))
            attrs = class_attrs(found[1])
            if attr not in attrs:
                raise Unresolved(ast.unparse(node))
            return values_of(src, found[0], attrs[attr], {}, attrs)
    raise Unresolved(ast.unparse(node))


def local_assignments(func: ast.FunctionDef) -> dict[str, ast.AST]:
    """Names assigned once by a plain `name = value` in a function body (for dynamic choice lists)."""
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, []).append(node.value)
    return {name: values[0] for name, values in assigned.items() if len(values) == 1}


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def literal(node: ast.AST | None):
    """The Python value of a literal expression, or its source text when it is not one."""
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ast.unparse(node)
