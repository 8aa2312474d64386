"""The committed runs of ci/probe_imports.py (every module imported on a CPU host, natives stood in): on
the slimmed tree, every module that imports on upstream's imports too, unless its import is a front door
refusing a removed feature with its message; and the run is of the committed tree's modules."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from slim.surface.policy import REFUSAL_MARK

REPO = Path(__file__).resolve().parents[2]
SLIM_RUN = REPO / "coverage_db/benchmarks/import-probe-20261207.json"
UPSTREAM_RUN = REPO / "coverage_db/benchmarks/import-probe-upstream-20261207.json"
_spec = importlib.util.spec_from_file_location("probe_imports", REPO / "ci/probe_imports.py")
probe_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe_imports)


def outcomes(path: Path) -> dict[str, str | None]:
    report = json.loads(path.read_text())
    return {**dict.fromkeys(report["imported"]), **report["failed"]}


def broken_by_slimming(slim: dict[str, str | None], upstream: dict[str, str | None]) -> list[str]:
    """Modules both trees have that import on upstream, fail on slim, and not at a front door."""
    return sorted(m for m, error in slim.items()
                  if error is not None and upstream.get(m, "absent") is None and REFUSAL_MARK not in error)


def test_slimming_broke_no_import_that_upstream_survives():
    slim, upstream = outcomes(SLIM_RUN), outcomes(UPSTREAM_RUN)
    both_import = [m for m in slim if slim[m] is None and upstream.get(m, "absent") is None]
    assert len(both_import) > 600  # the mocks leave most of the serving path importable
    assert broken_by_slimming(slim, upstream) == []
    assert any(error and REFUSAL_MARK in error for error in slim.values())  # the entry points' doors ran


def test_the_check_catches_a_broken_import():
    slim = {"sglang.a": "NameError: name 'gone' is not defined", "sglang.b": None,
            "sglang.c": f"ModuleNotFoundError: X {REFUSAL_MARK} (reason)"}
    assert broken_by_slimming(slim, dict.fromkeys(slim)) == ["sglang.a"]


def test_the_slimmed_run_is_of_the_committed_tree():
    """Re-run the probe (`bash ci/probe_env.sh`, then ci/probe_imports.py on both trees) when the tree's
    modules change."""
    assert set(outcomes(SLIM_RUN)) == set(probe_imports.module_names(REPO / "sglang/python"))
