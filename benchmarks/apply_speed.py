"""Time `slim plan` + `slim apply` on the real upstream tree with the committed recordings.

    .venv/bin/python benchmarks/apply_speed.py [OUT] [MODE] [DB]
OUT defaults to a temporary folder ("-"), MODE (names|reach|lean|lines|surface) to slim/policy.toml's [plan]
mode, DB (the recordings) to coverage_db.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.apply import apply_plan, count_lines  # noqa: E402
from slim.plan import make_function_plan, package_files  # noqa: E402
from slim.policy import load_policy  # noqa: E402
from slim.recording import load_all  # noqa: E402


def main() -> None:
    if any(arg.startswith("-") and arg != "-" for arg in sys.argv[1:]):
        sys.exit(__doc__.strip().splitlines()[2].strip())  # the usage line; no options exist
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else Path(tempfile.mkdtemp()) / "sglang"
    policy = load_policy()
    if len(sys.argv) > 2:
        policy = dataclasses.replace(policy, mode=sys.argv[2])
    pin = up.load_pin()
    tree = up.resolve_tree(None)
    start = time.perf_counter()
    db = Path(sys.argv[3]) if len(sys.argv) > 3 else REPO / "coverage_db"
    plan = make_function_plan(tree, package_files(tree), load_all(db, pin.version), policy)
    planned = time.perf_counter()
    apply_plan(plan, tree, pin, out)
    done = time.perf_counter()
    upstream = sum(count_lines(tree / d.path) for d in plan.files)
    kept = sum(count_lines(p) for p in (out / "python").rglob("*.py"))
    print(f"{policy.mode} mode: plan {planned - start:.1f} s, apply {done - planned:.1f} s, "
          f"total {done - start:.1f} s; "
          f"kept {kept} of {upstream} upstream .py lines ({100 * kept / upstream:.1f}%) -> {out}")


if __name__ == "__main__":
    main()
