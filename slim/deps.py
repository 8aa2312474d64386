"""Which of upstream's distributions the slimmed pyproject declares, and why.

A distribution is declared when a kept module imports it at module level (importing sglang needs
it), when a recording imported it and kept code imports it (a lazy import the recordings show is
live), when a lazy import of it serves an option the front door still accepts (SERVES), or ALWAYS.
A lazy import whose option is unmapped keeps its distribution too: dropping it could turn an
accepted option into an ImportError upstream would not give. Dropped: distributions kept code
never imports, or imports only under `try: ... except ImportError` (optional upstream as well),
or only for options slim/surface.toml refuses."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from slim.syntax import catches_import_error

# Import name -> distribution where the two differ (beyond case and -/_).
IMPORT_TO_DIST = {
    "PIL": "pillow", "yaml": "pyyaml", "zmq": "pyzmq", "sgl_kernel": "sglang-kernel",
    "deep_gemm": "sgl-deep-gemm", "flashinfer": "flashinfer-python", "cuda": "cuda-python",
    "cutlass": "nvidia-cutlass-dsl", "tvm_ffi": "apache-tvm-ffi", "pynvml": "nvidia-ml-py",
    "multipart": "python-multipart", "python_multipart": "python-multipart", "decord": "decord2",
    "flash_attn": "flash-attn-4", "quack": "quack-kernels", "humming": "humming-kernels",
    "nvmath": "nvidia-mathdx", "google": "protobuf", "triton": "torch", "mistral_common": "mistral-common",
}
# Needed at run time without an import statement in sglang: torch is the runtime (and triton's
# distribution), ninja and build run as tools for JIT kernel builds, packaging for version checks.
ALWAYS = {"torch": "the runtime (triton comes with it)", "ninja": "JIT kernel builds run the ninja CLI",
          "build": "a build tool JIT and kernel builds use", "packaging": "version checks of the runtime"}
# Distributions kept code imports only lazily, by the surface items (slim/surface.toml ids) whose
# use reaches the import: declared while the front door accepts one of them.
SERVES = {
    "torchao": ("flag:--torchao-config",),  # sglang/srt/layers/torchao_utils.py
    "xxhash": ("flag:--load-format=presharded",),  # PreshardedModelLoader._new_content_hasher
}
# How an import runs, strongest first: when the module is imported; inside a def (when it runs);
# in a `try:` that catches the ImportError (the code works without it).
MODULE, DEFERRED, OPTIONAL = "module", "deferred", "optional"
LEVELS = (MODULE, DEFERRED, OPTIONAL)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s;<>=!~\[(@]", requirement.strip(), maxsplit=1)[0])


def base_requirements(tree: Path, package: str) -> set[str]:
    """The names of the base requirements of the wheel unpacked at `tree` (what an extra provides is
    optional upstream as well); none without its dist-info."""
    from email.parser import Parser

    meta = next(tree.glob(f"{package}-*.dist-info"), None)
    if meta is None:
        return set()
    requires = Parser().parsestr((meta / "METADATA").read_text()).get_all("Requires-Dist") or []
    return {requirement_name(r) for r in requires if "extra ==" not in r}


def distribution(import_name: str) -> str:
    return normalize(IMPORT_TO_DIST.get(import_name, import_name))


def is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top == "__future__"


def _type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in {getattr(n, "id", getattr(n, "attr", None)) for n in ast.walk(test)}


def _tops(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return {node.module.split(".")[0]}
    return set()


def imported_tops(tree: ast.Module) -> dict[str, str]:
    """Top-level name of each absolute import a module makes -> how it runs (its strongest LEVEL).
    `if TYPE_CHECKING:` imports never run and are left out."""
    found: dict[str, str] = {}
    todo: list[tuple[ast.AST, str]] = [(tree, MODULE)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            todo += [(n, level) for n in node.orelse]
            continue
        for top in _tops(node):
            found[top] = min(found.get(top, level), level, key=LEVELS.index)
        if isinstance(node, ast.Try) and catches_import_error(node):
            todo += [(n, OPTIONAL) for n in node.body]
            todo += [(n, level) for n in [*node.handlers, *node.orelse, *node.finalbody]]
            continue
        inner = DEFERRED if level == MODULE and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.Lambda)) else level
        todo += [(n, inner) for n in ast.iter_child_nodes(node)]
    return found


@dataclass(frozen=True)
class Dependency:
    requirement: str  # as upstream's METADATA writes it
    name: str  # normalized distribution name
    declared: bool
    why: str


def _where(files: list[str]) -> str:
    return files[0] + (f" (and {len(files) - 1} more)" if len(files) > 1 else "")


def _importers(imports: dict[str, dict[str, str]]) -> dict[str, dict[str, list[str]]]:
    """distribution -> level -> the kept modules importing it at that level, sorted."""
    out: dict[str, dict[str, list[str]]] = {}
    for path, tops in sorted(imports.items()):
        for top, level in tops.items():
            if not is_stdlib(top):
                out.setdefault(distribution(top), {}).setdefault(level, []).append(path)
    return out


def decide(name: str, by_level: dict[str, list[str]], recorded: set[str], refused: set[str]) -> tuple[bool, str]:
    """Whether one distribution is declared, and why (the first rule that holds)."""
    if MODULE in by_level:
        return True, f"module-level import in {_where(by_level[MODULE])}"
    lazy = by_level.get(DEFERRED, []) + by_level.get(OPTIONAL, [])
    if lazy and name in recorded:
        return True, f"recorded (a recording imported it); lazy import in {_where(lazy)}"
    if name in ALWAYS:
        return True, f"always: {ALWAYS[name]}"
    if lazy and DEFERRED not in by_level:
        return False, f"only optional imports (`try: ... except ImportError`) in {_where(lazy)}"
    if not lazy:  # a recorded one came in through another library, which declares it itself
        return False, "no kept module imports it" + (" (recorded: another library imported it)"
                                                     if name in recorded else ", no recording imported it")
    accepted = [item for item in SERVES.get(name, ()) if item not in refused]
    if accepted:
        return True, f"accepted option {accepted[0]}: lazy import in {_where(by_level[DEFERRED])}"
    if name in SERVES:
        return False, f"serves only refused options ({', '.join(SERVES[name])})"
    return True, f"lazy import in {_where(by_level[DEFERRED])} serving an option not mapped in SERVES (kept to be safe)"


def dependencies(requires: list[str], imports: dict[str, dict[str, str]], recorded: set[str],
                 refused: set[str]) -> list[Dependency]:
    """Every upstream requirement with its verdict. `imports`: kept module -> imported_tops;
    `recorded`: top-level names recordings imported; `refused`: surface ids the front door refuses."""
    importers = _importers(imports)
    recorded_dists = {distribution(t) for t in recorded}
    out = []
    for requirement in requires:
        name = requirement_name(requirement)
        declared, why = decide(name, importers.get(name, {}), recorded_dists, refused)
        out.append(Dependency(requirement, name, declared, why))
    return out
