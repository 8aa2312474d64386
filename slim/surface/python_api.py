"""The offline Python API as surface items: the public methods of `sgl.Engine` (what RL frameworks and
offline scripts call instead of HTTP routes), with those of its sglang base classes (the score mixin,
EngineBase). A method counts as recorded when a recording ran its def (slim.surface.status)."""

from __future__ import annotations

import ast

from slim.surface.pysrc import Source

ENGINE = ("sglang.srt.entrypoints.engine", "Engine")


def public_methods(cls: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in cls.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_")]


def class_chain(src: Source, module: str, name: str) -> list[tuple[str, ast.ClassDef]]:
    """(module, class) for a class and, after it, each base class defined in sglang (depth first)."""
    found = src.lookup(module, name)
    if found is None or not isinstance(found[1], ast.ClassDef):
        return []
    where, cls = found
    chain = [(where, cls)]
    for base in cls.bases:
        if isinstance(base, ast.Name):
            chain += class_chain(src, where, base.id)
    return chain


def engine_methods(src: Source) -> list[tuple[str, ast.ClassDef, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(module, class, method) for each public method `Engine` answers to: its own, then its bases' not
    overridden (the subclass's is what a caller gets)."""
    found, seen = [], set()
    for module, cls in class_chain(src, *ENGINE):
        for method in public_methods(cls):
            if method.name not in seen:
                seen.add(method.name)
                found.append((module, cls, method))
    return found


def derive_engine_methods(src: Source) -> list[dict]:
    """One item per public method `Engine` has, named `Engine.method` wherever a base defines it."""
    return [{"id": f"python:Engine.{method.name}", "kind": "engine_method", "name": f"Engine.{method.name}",
             "source": f"{src.rel(module)}::{cls.name}.{method.name}", "line": method.lineno}
            for module, cls, method in engine_methods(src)]
