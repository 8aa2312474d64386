"""Leave-one-out over the committed recordings (CPU only, a few minutes on 2 cores):

    .venv/bin/python benchmarks/holdout.py [--db coverage_db] [--out coverage_db/benchmarks/holdout.json]

For each recording, the plan is made from the recordings of the other scenarios (slim.holdout) and
what it would have cut from the held-out run is counted: how far the recorded surface carries to a
scenario not recorded. The pending recordings (coverage_db/pending/: scenarios recorded on a GPU but
not yet planned from, each with a GPU verify of the committed tree beside it) are looked up in the
plan from all committed recordings, so the estimate meets a GPU answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.holdout import class_bodies, import_time, missed_by  # noqa: E402
from slim.plan import make_function_plan, package_files  # noqa: E402
from slim.policy import load_policy  # noqa: E402
from slim.recording import load_all, load_pending  # noqa: E402

SCHEMA = "slim-holdout/2"  # /1 compared the plan modes gone since (docs/results.md)


def _print(how: str, missed) -> None:
    print(f"{how:7} {missed.scenario:24} misses {len(missed.modules):3} of {missed.modules_used} "
          f"modules, {len(missed.functions):4} of {missed.functions_run} functions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=REPO / "coverage_db", help="the recordings to hold out in turn")
    parser.add_argument("--out", type=Path, default=REPO / "coverage_db" / "benchmarks" / "holdout.json")
    args = parser.parse_args()
    pin = up.load_pin()
    tree = up.resolve_tree(None)
    files = package_files(tree)
    recordings = load_all(args.db, pin.version)
    pending = load_pending(args.db, pin.version)
    ran_in = sorted({f for r in recordings + pending for f in r.functions["file"] if f.endswith(".py")})
    classes, at_import = class_bodies(tree, ran_in), import_time(tree, ran_in)
    rows = []
    policy = load_policy()
    for held_out in recordings:
        # a scenario's other runs (another GPU model) would hand its own coverage back
        others = [r for r in recordings if r.scenario != held_out.scenario]
        missed = missed_by(make_function_plan(tree, files, others, policy), held_out, classes, at_import)
        rows.append({"held_out": held_out.name, **dataclasses.asdict(missed)})
        _print("without", missed)
    plan = make_function_plan(tree, files, recordings, policy)
    for unseen in pending:
        missed = missed_by(plan, unseen, classes, at_import)
        rows.append({"held_out": unseen.name, "pending": True, **dataclasses.asdict(missed)})
        _print("unseen", missed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"schema": SCHEMA, "upstream": pin.version, "db": args.db.as_posix(), "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
