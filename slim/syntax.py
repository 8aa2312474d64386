"""Small `ast` helpers the indexer shares: dotted names, first lines, compound statement bodies."""

from __future__ import annotations

import ast


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return dotted(node.func)
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


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
