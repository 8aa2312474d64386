"""The Plan: a pure function from (upstream tree, recordings) to what the slimmed tree keeps.

The file level lives in slim/plan_files.py, the function level in slim/plan_defs.py, the types in
slim/plan_types.py; this module indexes the kept modules and puts the two levels together.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from slim import defs, index_cache
from slim.plan_defs import (  # noqa: F401 - re-exported
    _hierarchy_runs,
    _kept_uses,
    decide_defs,
    entry_modules,
    executed_lines,
    run_functions,
    unused_sglang_imports,
    with_policy_entries,
)
from slim.plan_files import (  # noqa: F401 - re-exported
    MODULE_SUFFIXES,
    UNREACHED,
    imported_files,
    is_module,
    make_plan,
    package_files,
    policy_files,
    request_path_imports,
    whole_path_imports,
)
from slim.plan_types import DefDecision, FileDecision, FileEdits, Plan  # noqa: F401 - re-exported
from slim.policy import Policy, check_names_upstream, load_policy
from slim.reach import reach
from slim.recording import Recording


def _index_all(tree: Path, files: list[str]) -> list:
    """Index the kept modules: from the index cache where it has them, the others anew (and
    into the cache)."""
    keys = {f: index_cache.entry_key(f, (tree / f).read_bytes()) for f in files}
    indexes = {f: index_cache.load(keys[f]) for f in files}
    missing = [f for f in files if indexes[f] is None]
    for path, pickled in zip(missing, _index_fresh(tree, missing), strict=True):
        index_cache.store(keys[path], pickled)
        indexes[path] = pickle.loads(pickled)
    return [indexes[f] for f in files]


def _index_fresh(tree: Path, files: list[str]) -> list[bytes]:
    """Each module's index, pickled; in worker processes on a big tree (ast is CPU-bound)."""
    jobs = [(str(tree), f) for f in files]
    if len(files) < 50:
        return [_index_one(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        return list(pool.map(_index_one, jobs, chunksize=8))


def _index_one(job) -> bytes:
    """One module's index, pickled: the form both the cache and the worker's reply take."""
    tree, path = job
    return pickle.dumps(defs.index_module(path, (Path(tree) / path).read_bytes()))



def make_function_plan(tree: Path, files: list[str], recordings: list[Recording],
                       policy: Policy | None = None) -> Plan:
    """The full plan: the imported modules (make_plan) with a keep/delete decision for every def.
    The modules narrow to what the code that ran reaches (slim.reach)."""
    policy = policy if policy is not None else load_policy()
    check_names_upstream(policy, tree)  # an entry naming nothing would silently judge nothing
    extra = policy_files(tree, files, policy)
    recorded = set(imported_files(recordings))
    extra |= request_path_imports(tree, files, recorded | set(extra), policy)
    extra |= whole_path_imports(tree, files, recorded | set(extra), policy)
    imported = make_plan(files, recordings, extra=extra)
    ran = run_functions(recordings)
    indexes = _index_all(tree, [p for p in imported.kept if p.endswith(".py")])
    executed = executed_lines(recordings)
    live = reach(indexes, ran, policy, _hierarchy_runs(indexes, set(ran)), entry_modules(recordings), executed)
    unreached = {i.path: UNREACHED for i in indexes if i.path not in live.modules}
    plan = make_plan(files, recordings, extra=extra, unreached=unreached)
    plan.defs, plan.edits = decide_defs([i for i in indexes if i.path in live.modules], live)
    plan.defs = with_policy_entries(plan.defs, policy)
    plan.policy = policy
    return plan
