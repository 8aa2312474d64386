"""Small `ast` helpers shared by the indexer, the transforms and the checks: dotted names, first
lines, and the one walker over module-level statements and the names they bind."""

from __future__ import annotations

import ast


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return dotted(node.func)
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def catches_import_error(node: ast.Try) -> bool:
    """A handler catches ImportError: bare, ImportError or a base of it, alone or in a tuple. The
    imports in its `try:` are optional: the module loads without them."""
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(t, ast.Name) and t.id in IMPORT_ERRORS for t in types):
            return True
    return False


def first_line(node: ast.AST) -> int:
    return min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])


def compound_bodies(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """Bodies of if/try/with/for/while in source order (libcst visits them in the same order)."""
    bodies = [getattr(stmt, name, []) for name in ("body",)]
    bodies += [h.body for h in getattr(stmt, "handlers", [])]
    bodies += [getattr(stmt, name, []) for name in ("orelse", "finalbody")]
    return bodies


def module_statements(body: list[ast.stmt]):
    """Module-level statements, descending into if/try/with/for bodies but not into defs."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.AsyncWith, ast.AsyncFor)):
            for sub in compound_bodies(stmt):
                yield from module_statements(sub)


def alias_binds(alias: ast.alias) -> str:
    """The name an import alias binds: `import a.b` binds a, `import a.b as c` c, `from m import x` x."""
    return alias.asname or alias.name.split(".")[0]


def names_bound(stmt: ast.stmt) -> set[str]:
    """Names one statement binds itself, not those of the statements nested in it. A star import
    binds names only its module knows; `del x` unbinds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {alias_binds(a) for a in stmt.names if a.name != "*"}
    if isinstance(stmt, ast.Delete):
        return set()
    targets = [getattr(stmt, "target", None), *getattr(stmt, "targets", []),
               *[item.optional_vars for item in getattr(stmt, "items", [])]]
    return {n.id for t in targets if t for n in ast.walk(t) if isinstance(n, ast.Name)}


def module_imports(tree: ast.Module):
    """The module-level import statements, compound statements included (not those in defs)."""
    return (stmt for stmt in module_statements(tree.body) if isinstance(stmt, (ast.Import, ast.ImportFrom)))
