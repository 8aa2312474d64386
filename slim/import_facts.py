"""The module names a file's imports may load, read once per file and kept on disk
(slim/memo_cache.py): the file plan asks them of ~1,300 upstream files on every plan.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from slim import defs, implicit, module_names, platform_names, syntax
from slim.memo_cache import Memo

IMPORTS = Memo("imports", (sys.modules[__name__], defs, implicit, module_names, platform_names, syntax))


def imported_names(node, path: str) -> list[str]:
    """Module names the imports directly inside `node`'s body (and its branches) may load, each once
    per import statement, in the order the imports name them (the walk that follows them is depth first)."""
    return [name for stmt in ast.walk(node) if isinstance(stmt, ast.Import | ast.ImportFrom)
            for name in dict.fromkeys(t for _, targets in module_names.import_targets(stmt, path) for t in targets)]


def _facts(source: bytes, path: str) -> tuple[list[str], list[str]]:
    module = ast.parse(source)
    top = [name for stmt in module.body if isinstance(stmt, ast.Import | ast.ImportFrom)
           for name in imported_names(stmt, path)]
    # every def and `if` in walk order (a def under an `if` counts under both, as it always did)
    nested = [name for node in ast.walk(module) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.If)
              for name in imported_names(node, path)]
    return top, nested


def import_facts(tree: Path, path: str) -> tuple[list[str], list[str]]:
    """(names the module-level imports may load, names the imports inside its defs and `if`s
    may load), each in source (ast.walk) order. An extension module (`grpc/_core.*.so`) has no
    Python source to read: none."""
    if not path.endswith(".py"):
        return [], []
    source = (tree / path).read_bytes()
    return IMPORTS.get(Memo.key(path.encode(), source), lambda: _facts(source, path))
