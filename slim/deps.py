"""Which distributions the kept code imports: prunes the slimmed pyproject's dependencies."""

from __future__ import annotations

import ast
import re
import sys

# Import name -> distribution where the two differ (beyond case and -/_).
IMPORT_TO_DIST = {
    "PIL": "pillow", "yaml": "pyyaml", "zmq": "pyzmq", "sgl_kernel": "sglang-kernel",
    "deep_gemm": "sgl-deep-gemm", "flashinfer": "flashinfer-python", "cuda": "cuda-python",
    "cutlass": "nvidia-cutlass-dsl", "tvm_ffi": "apache-tvm-ffi", "pynvml": "nvidia-ml-py",
    "multipart": "python-multipart", "python_multipart": "python-multipart", "decord": "decord2",
    "flash_attn": "flash-attn-4", "quack": "quack-kernels", "humming": "humming-kernels",
    "nvmath": "nvidia-mathdx", "google": "protobuf", "triton": "torch", "mistral_common": "mistral-common",
}
# Needed at run time without an import statement in sglang (build tools, CLIs, torch's own deps).
ALWAYS = {"torch", "ninja", "build", "packaging"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s;<>=!~\[(@]", requirement.strip(), maxsplit=1)[0])


def distribution(import_name: str) -> str:
    return normalize(IMPORT_TO_DIST.get(import_name, import_name))


def is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top == "__future__"


def _type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in {getattr(n, "id", getattr(n, "attr", None)) for n in ast.walk(test)}


def imported_tops(tree: ast.Module) -> set[str]:
    """Top-level names of the absolute imports a module makes anywhere (not under TYPE_CHECKING)."""
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return found


def keep_requirements(requires: list[str], tops: set[str]) -> list[str]:
    """The requirements a distribution the kept code imports (or ALWAYS needs) satisfies."""
    wanted = {distribution(t) for t in tops if not is_stdlib(t)} | ALWAYS
    return [r for r in requires if requirement_name(r) in wanted]
