"""Triton kernels: upstream vs the committed tree vs launched in some recording (CPU only).

    .venv/bin/python benchmarks/triton_kernels.py

A kernel is a def decorated with `triton.jit` / `triton.autotune` (or a bare `@jit` imported from
triton); "launched" is a recording's kernel row attributed to that def (slim/kernels.py). Kept
but never launched: device helpers inlined into launched kernels, and kernels live code names on
paths no scenario took.
"""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.paths import DB, OUT  # noqa: E402
from slim.recording import load_all  # noqa: E402


def _is_triton(decorator: ast.expr) -> bool:
    text = ast.unparse(decorator)
    return text.startswith(("triton.jit", "triton.autotune", "triton.heuristics", "jit", "tl.core"))


def triton_kernels(package_root: Path) -> set[str]:
    """`path::name` of every Triton kernel def under package_root/sglang."""
    found = set()
    for path in sorted((package_root / "sglang").rglob("*.py")):
        rel = path.relative_to(package_root).as_posix()
        if rel.startswith(up.OUT_OF_SCOPE):
            continue
        with warnings.catch_warnings():  # upstream has invalid escapes in plain strings
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(path.read_bytes())
        found |= {f"{rel}::{node.name}" for node in ast.walk(tree)
                  if isinstance(node, ast.FunctionDef) and any(map(_is_triton, node.decorator_list))}
    return found


def main() -> None:
    pin = up.load_pin()
    upstream = triton_kernels(up.verify_tree(up.default_tree(pin)))
    kept = triton_kernels(OUT / "python")
    launched = {row[3] for r in load_all(DB, pin.version) for row in r.data["kernels"] if row[3]}
    print(f"triton kernels: upstream {len(upstream)}, kept {len(kept)}, launched in some recording "
          f"{len(launched)} (all kept: {launched <= kept})")


if __name__ == "__main__":
    main()
