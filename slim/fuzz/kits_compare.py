"""Upstream's kit outcomes against slim's, test by test -> the report's "kits" section. Pure.

A test upstream passes must pass on slim, unless slim refused it at its front door (the failure
carries REFUSAL_MARK: the removed feature said so, which is the point of removing it). What upstream
itself fails or skips judges nothing (a note). A test slim did not get to for lack of budget is a
note too: not a verdict on the tree, and the report says how many."""

from __future__ import annotations

from collections import Counter

from slim.surface.policy import REFUSAL_MARK

PASSED, PROBLEM, REFUSED, NOT_RUN = "passed", "problem", "refused", "not_run"
UPSTREAM_FAILS, UPSTREAM_NOT_RUN = "upstream_fails", "upstream_not_run"
SKIPPED, NO_UPSTREAM = "skipped", "no_upstream"
MISSING = {"outcome": "missing", "seconds": 0.0, "excerpt": "no outcome (the side's kit runner gave none)"}


def verdict(up: dict, slim: dict, mark: str = REFUSAL_MARK) -> str:
    """What one test's pair of outcomes says about the slimmed tree."""
    if up["outcome"] == "missing":
        return NO_UPSTREAM
    if up["outcome"] == "skip":
        return SKIPPED
    if up["outcome"] == "not_run":
        return UPSTREAM_NOT_RUN
    if up["outcome"] != "pass":
        return UPSTREAM_FAILS
    if slim["outcome"] == "pass":
        return PASSED
    if slim["outcome"] == "not_run":
        return NOT_RUN
    return REFUSED if mark in slim.get("excerpt", "") else PROBLEM


def line(test_id: str, up: dict, slim: dict, kind: str) -> str:
    """One problem or note line: the test, both outcomes, the excerpt of the side the verdict is about."""
    shown = up if kind.startswith("upstream") else slim
    text = f"kit {test_id}: {WHAT[kind]} (upstream {up['outcome']}, slim {slim['outcome']})"
    return text + (f": {shown['excerpt'][:160]}" if shown.get("excerpt") else "")


WHAT = {PROBLEM: "slim does not pass what upstream passes", REFUSED: "refused at slim's front door",
        NOT_RUN: "not run on slim (the kits budget ran out)", UPSTREAM_FAILS: "upstream does not pass it",
        UPSTREAM_NOT_RUN: "not run on upstream (the kits budget ran out)"}


def side_summary(run: dict | None) -> dict:
    """What one side's kits phase took, and its outcome counts."""
    if run is None:
        return {"ran": False}
    return {"ran": True, "seconds": run.get("seconds"), "launches": run.get("launches"),
            "budget_s": run.get("budget_s"), "timeout_s": run.get("timeout_s"),
            "runner_errors": run.get("runner_errors", []), "server_alive_after": run.get("server_alive_after"),
            "outcomes": dict(sorted(Counter(t["outcome"] for t in run["tests"].values()).items()))}


def compare_kits(upstream: dict | None, slim: dict | None, mark: str = REFUSAL_MARK) -> dict:
    """The report's "kits" section: per test both outcomes and a verdict; problems (they fail the run)
    and notes. None for a side that ran no kits (never healthy, or not started)."""
    up_tests, slim_tests = (run["tests"] if run else {} for run in (upstream, slim))
    tests, problems, notes = {}, [], []
    for test_id in list(up_tests) + [t for t in slim_tests if t not in up_tests]:
        up, got = up_tests.get(test_id, MISSING), slim_tests.get(test_id, MISSING)
        kind = verdict(up, got, mark)
        tests[test_id] = {"upstream": up, "slim": got, "verdict": kind}
        if kind == PROBLEM:
            problems.append(line(test_id, up, got, kind))
        elif kind in WHAT:
            notes.append(line(test_id, up, got, kind))
    for side, run in (("upstream", upstream), ("slim", slim)):
        for error in (run or {}).get("runner_errors", []):
            notes.append(f"kits on {side}: {error}")
        if run and run.get("server_alive_after") is False:
            (problems if side == "slim" and upstream and upstream.get("server_alive_after") else notes).append(
                f"kits on {side}: the server died during the kit tests")
    if upstream and tests and not any(t["upstream"]["outcome"] == "pass" for t in tests.values()):
        problems.append("kits on upstream: no test passed, so the kits judged nothing (a harness fault, "
                        "e.g. the kits' imports: see the excerpts)")
    verdicts = Counter(t["verdict"] for t in tests.values())
    return {"sides": {"upstream": side_summary(upstream), "slim": side_summary(slim)}, "tests": tests,
            "verdicts": dict(sorted(verdicts.items())), "problems": problems, "notes": notes}
