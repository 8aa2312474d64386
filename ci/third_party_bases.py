"""Write slim/third_party_methods.json: for every third-party class upstream's classes derive from,
the names of the methods it (and its ancestors) defines, read statically from the GPU runtime's
site-packages (ci/build_gpu_runtime.sh unpacks it in .rt/stage/deps/site; nothing is imported).

    python ci/third_party_bases.py [--site DIR ...] [--out slim/third_party_methods.json]

Sites are searched in order: by default the runtime's, then the CPU probe venv's (ci/probe_env.sh:
torch is the GPU image's, not the runtime's; its classes' method names do not change between 2.11
and the venv's CPU build).

The planner (slim/implicit.py) keeps a method that overrides one of them with its class: the library
calls it by name (torch.fx.Interpreter dispatches nodes to `call_module`; flashinfer calls a
CommBackend's `Get_rank`), so deleting it silently runs the base's own method, or leaves the class
abstract. A base the site does not hold is listed under "unresolved"."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.implicit import base_name, library_names  # noqa: E402
from slim.module_names import module_files  # noqa: E402
from slim.syntax import dotted, module_statements  # noqa: E402

SKIPPED_ROOTS = {"sglang", "typing", "typing_extensions", "abc", "builtins"}
MAX_DEPTH = 12


def module_source(sites: list[Path], module: str) -> Path | None:
    return next((site / f for site in sites for f in module_files(module) if (site / f).is_file()), None)


def resolve_class(site: list[Path], dotted_name: str, depth: int = 0) -> set[str] | None:
    """Method names of the class `dotted_name` and its ancestors, through re-exports; None if not found."""
    module, _, name = dotted_name.rpartition(".")
    path = module_source(site, module) if module and depth < MAX_DEPTH else None
    if path is None:
        return None
    tree = ast.parse(path.read_text(errors="replace"))
    rel = next(f for f in module_files(module) if path.as_posix().endswith(f))  # relative imports resolve on it
    names = library_names(tree, rel)
    for stmt in module_statements(tree.body):
        if isinstance(stmt, ast.ClassDef) and stmt.name == name:
            methods = {n.name for n in stmt.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            for base in stmt.bases:  # not imported: a class of this module
                full = base_name(base, names) or f"{module}.{dotted(base)}"
                methods |= resolve_class(site, full, depth + 1) or set()
            return methods
    if name in names and names[name] != dotted_name:  # imported here: follow it
        return resolve_class(site, names[name], depth + 1)
    return None


def upstream_bases(tree_root: Path) -> set[str]:
    """Dotted names of the non-sglang, non-stdlib classes upstream's classes name as bases."""
    found = set()
    for path in sorted((tree_root / "sglang").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except SyntaxError:
            continue
        names = library_names(tree, path.relative_to(tree_root).as_posix())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for full in filter(None, (base_name(base, names) for base in node.bases)):
                    root = full.split(".")[0]
                    if root not in SKIPPED_ROOTS and root not in sys.stdlib_module_names:
                        found.add(full)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, action="append",
                        help="default: .rt/stage/deps/site, then /tmp/probe-venv's site-packages")
    parser.add_argument("--out", type=Path, default=REPO / "slim/third_party_methods.json")
    args = parser.parse_args()
    sites = args.site or [REPO / ".rt/stage/deps/site", *Path("/tmp/probe-venv/lib").glob("python3*/site-packages")]
    bases = upstream_bases(up.default_tree(up.load_pin()))
    methods, unresolved = {}, []
    for full in sorted(bases):
        found = resolve_class(sites, full)
        if found:
            methods[full] = sorted(found)
        else:
            unresolved.append(full)
    args.out.write_text(json.dumps({"site": "ci/build_gpu_runtime.sh's third-party runtime (.rt/stage/deps/site)",
                                    "methods": methods, "unresolved": unresolved}, indent=1) + "\n")
    print(f"{len(methods)} bases resolved, {len(unresolved)} not in the site: {args.out}")


if __name__ == "__main__":
    main()
