"""Leave-one-out over the committed recordings, in every plan mode (CPU only, ~10 min on 2 cores):

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
from slim.policy import PLAN_MODES, load_policy  # noqa: E402
from slim.recording import load_all, load_pending  # noqa: E402

SCHEMA = "slim-holdout/1"


def _print(mode: str, how: str, missed) -> None:
    print(f"{mode:5} {how:7} {missed.scenario:24} misses {len(missed.modules):3} of {missed.modules_used} "
          f"modules, {len(missed.functions):4} of {missed.functions_run} functions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=REPO / "coverage_db", help="the recordings to hold out in turn")
    parser.add_argument("--out", type=Path, default=REPO / "coverage_db" / "benchmarks" / "holdout.json")
    parser.add_argument("--modes", default=",".join(PLAN_MODES), help="plan modes to compare, comma-separated")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if unknown := set(modes) - set(PLAN_MODES):
        parser.error(f"unknown plan modes {', '.join(sorted(unknown))}; choose from {', '.join(PLAN_MODES)}")
    pin = up.load_pin()
    tree = up.resolve_tree(None)
    files = package_files(tree)
    recordings = load_all(args.db, pin.version)
    pending = load_pending(args.db, pin.version)
    ran_in = sorted({f for r in recordings + pending for f in r.functions["file"] if f.endswith(".py")})
    classes, at_import = class_bodies(tree, ran_in), import_time(tree, ran_in)
    rows = []
    for mode in modes:
        policy = dataclasses.replace(load_policy(), mode=mode)
        for held_out in recordings:
            # a scenario's other runs (another GPU model) would hand its own coverage back
            others = [r for r in recordings if r.scenario != held_out.scenario]
            missed = missed_by(make_function_plan(tree, files, others, policy), held_out, classes, at_import)
            rows.append({"mode": mode, "held_out": held_out.name, **dataclasses.asdict(missed)})
            _print(mode, "without", missed)
    for mode in modes:
        plan = make_function_plan(tree, files, recordings, dataclasses.replace(load_policy(), mode=mode))
        for unseen in pending:
            missed = missed_by(plan, unseen, classes, at_import)
            rows.append({"mode": mode, "held_out": unseen.name, "pending": True, **dataclasses.asdict(missed)})
            _print(mode, "unseen", missed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"schema": SCHEMA, "upstream": pin.version, "db": args.db.as_posix(), "modes": modes, "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
