"""Module names from file paths and import statements: what an import or a string may load."""

from __future__ import annotations

import ast
import re

# "sglang.a.b", "sglang.a.b.Class", "sglang.a.b:attr" (KernelSpec targets, lazy-import tables).
MODULE_STRING = re.compile(r"(sglang(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?::[A-Za-z_][A-Za-z0-9_.]*)?")
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def import_targets(stmt: ast.Import | ast.ImportFrom, path: str) -> list[tuple[str, tuple[str, ...]]]:
    """(bound name, modules it may load) per alias: `import a.b.c` binds a and loads a.b.c (and
    its packages); `from m import x` loads m, and m.x when x is a submodule."""
    if isinstance(stmt, ast.Import):
        return [(a.asname or a.name.split(".")[0], (a.name,)) for a in stmt.names]
    module = resolve_relative(stmt.module, stmt.level, path) if path else "." * stmt.level + (stmt.module or "")
    return [(a.asname or a.name, (module, f"{module}.{a.name}")) for a in stmt.names]


def string_modules(text: str) -> list[str]:
    """sglang modules a string may name ("sglang.srt.x", "sglang.srt.x.Class", "sglang.srt.x:fn"
    for importlib): each dotted prefix, since which of them is the module only the tree knows."""
    match = MODULE_STRING.fullmatch(text)
    if not match:
        return []
    parts = match.group(1).split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]


def resolve_relative(module: str | None, level: int, path: str) -> str:
    """The absolute module of `from <level dots><module> import ...` in file `path`
    ('sglang/srt/x/__init__.py': one dot is sglang.srt.x itself)."""
    if not level:
        return module or ""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def module_name(path: str) -> str:
    """'sglang/srt/utils/__init__.py' -> 'sglang.srt.utils'."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_files(module: str) -> list[str]:
    """'sglang.srt.utils' -> the two files it may be: ['sglang/srt/utils.py', 'sglang/srt/utils/__init__.py']."""
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]
