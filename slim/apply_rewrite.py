"""The libcst pass of `slim apply`: every kept module through slim/transforms, with the results
kept on disk (slim/memo_cache.py) so that an apply of an unchanged plan rewrites nothing again.

A module's result (its new bytes, or None when unchanged, and the top-level names it imports) is
a pure function of its path and bytes, the plan's actions and edits for it, and the code below:
this module, slim/transforms, the `defs` helpers they use, slim/deps.py, and libcst's version.
"""

from __future__ import annotations

import ast
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from slim import defs, deps, implicit, module_names, platform_names, syntax
from slim.deps import imported_tops
from slim.memo_cache import Memo
from slim.transforms import base, imports, platform, registry, rewrite
from slim.transforms.rewrite import rewrite_module

if TYPE_CHECKING:  # only the annotation: the plan's code is no part of a rewrite's result
    from slim.plan import Plan

REWRITER = (sys.modules[__name__], rewrite, base, imports, platform, registry, defs, implicit, module_names,
            platform_names, syntax, deps)
REWRITES = Memo("rewrite", REWRITER, extra=f"libcst {version('libcst')}")


def _module_job(job) -> tuple[str, bytes | None, dict[str, str]]:
    """Worker: (path, new bytes or None when unchanged, top-level names it imports -> how)."""
    tree, path, actions, edits = job
    source = (Path(tree) / path).read_bytes()
    new = rewrite_module(source, actions, *edits, tidy=True) if actions or any(edits) else None
    return path, new if new != source else None, imported_tops(ast.parse(new or source))


def _job_key(tree: Path, job) -> str:
    _, path, actions, edits = job
    return Memo.key(path.encode(), (tree / path).read_bytes(), repr(sorted(actions.items())).encode(),
                    repr([sorted(names) for names in edits]).encode())


def _jobs(plan: Plan, tree: Path) -> list[tuple]:
    by_file = plan.defs_by_file()
    jobs = []
    for rel in plan.kept:
        if not rel.endswith(".py"):
            continue
        actions = {(d.qualname, d.line): d.action for d in by_file.get(rel, []) if d.action != "keep"}
        e = plan.edits.get(rel)
        edits = (set(e.helpers), set(e.constants), set(e.registry), set(e.imports)) if e else (set(),) * 4
        jobs.append((str(tree), rel, actions, edits))
    return jobs


def usable_cpus() -> int:
    """The CPUs this process may run on (a `taskset` or a container's cpuset, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run(jobs: list[tuple], tree: Path) -> list[tuple[str, bytes | None, dict[str, str]]]:
    # Biggest jobs first so the pool ends together; results are keyed, so order does not matter.
    jobs = sorted(jobs, key=lambda j: -(tree / j[1]).stat().st_size)
    if len(jobs) < 50:
        return [_module_job(j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max(1, min(4, usable_cpus()))) as pool:
        return list(pool.map(_module_job, jobs, chunksize=4))


def rewrite_modules(plan: Plan, tree: Path) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """Run the plan's transforms over every kept module: from the memo where it has the result,
    the others in worker processes (libcst is slow); also each kept module's imports (deps.imported_tops)."""
    jobs = _jobs(plan, tree)
    keys = {job[1]: _job_key(tree, job) for job in jobs}
    results = {path: REWRITES.load(key) for path, key in keys.items()}
    for path, new, tops in _run([j for j in jobs if results[j[1]] is None], tree):
        results[path] = (new, tops)
        REWRITES.store(keys[path], results[path])
    rewritten = {path: new for path, (new, _) in results.items() if new is not None}
    return rewritten, {path: tops for path, (_, tops) in results.items()}
