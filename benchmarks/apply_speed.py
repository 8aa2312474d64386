"""Time `slim plan` + `slim apply` on the real upstream tree with the committed recordings.

    .venv/bin/python benchmarks/apply_speed.py [OUT] [DB]
    .venv/bin/python benchmarks/apply_speed.py --samples LABEL [CODE] [RUNS] [CPUS]
The first form times the two phases in this process: OUT defaults to a temporary folder ("-"), DB
(the recordings) to coverage_db.
The second times the command `taskset -c CPUS python -m slim apply --out TMP` (CPUS: 0,1, a 2-core CI
machine) RUNS times (3) with a warm cache (one run first, not counted), the slim code taken from the
checkout CODE (this one), and writes the samples under LABEL (e.g. before, after) into
benchmarks/results/apply_speed.json, with the machine, the command and each run's tree digest.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.apply import apply_plan, count_lines, tree_digest  # noqa: E402
from slim.plan import make_function_plan, package_files  # noqa: E402
from slim.policy import load_policy  # noqa: E402
from slim.recording import load_all  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "apply_speed.json"


def phases() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else Path(tempfile.mkdtemp()) / "sglang"
    policy = load_policy()
    pin = up.load_pin()
    tree = up.resolve_tree(None)
    start = time.perf_counter()
    db = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "coverage_db"
    plan = make_function_plan(tree, package_files(tree), load_all(db, pin.version), policy)
    planned = time.perf_counter()
    apply_plan(plan, tree, pin, out)
    done = time.perf_counter()
    upstream = sum(count_lines(tree / d.path) for d in plan.files)
    kept = sum(count_lines(p) for p in (out / "python").rglob("*.py"))
    print(f"plan {planned - start:.1f} s, apply {done - planned:.1f} s, "
          f"total {done - start:.1f} s; "
          f"kept {kept} of {upstream} upstream .py lines ({100 * kept / upstream:.1f}%) -> {out}")


def machine(cpus: str) -> dict:
    model = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout
    return {"nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout), "cpus_used": cpus,
            "model_name": model.split(":", 1)[-1].strip(), "python": platform.python_version(),
            "slim_cache": os.environ.get("SLIM_CACHE", "~/.cache/slim")}


def timed_apply(code: Path, cpus: str) -> tuple[float, str]:
    """One `slim apply` of the checkout `code` into a fresh folder: (wall seconds, tree digest)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sglang"
        env = {**os.environ, "PYTHONPATH": str(code)}
        started = time.perf_counter()
        subprocess.run(["taskset", "-c", cpus, sys.executable, "-m", "slim", "apply", "--out", str(out)],
                       cwd=code, env=env, check=True, capture_output=True)
        return round(time.perf_counter() - started, 2), tree_digest(out)


def samples(label: str, code: Path, runs: int, cpus: str) -> None:
    timed_apply(code, cpus)  # warm the caches (the index cache and the rewrites); not counted
    load_before = os.getloadavg()[0]  # other work on the machine shows here: samples are wall times
    measured = [timed_apply(code, cpus) for _ in range(runs)]
    report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {
        "schema": "slim-benchmark/1", "benchmark": "apply_speed", "runs": {}}
    report["machine"] = machine(cpus)
    report["command"] = f"taskset -c {cpus} python -m slim apply --out TMP  (warm cache; one unmeasured run first)"
    report["runs"][label] = {
        "code": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True).stdout.strip() if code == REPO else str(code),
        "wall_s": [s for s, _ in measured], "tree_digest": sorted({d for _, d in measured}),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(label, report["runs"][label])


def main() -> None:
    if sys.argv[1:2] == ["--samples"] and len(sys.argv) > 2:
        args = sys.argv[2:] + [None] * 3
        samples(args[0], Path(args[1] or REPO).resolve(), int(args[2] or 3), args[3] or "0,1")
    elif any(arg.startswith("-") and arg != "-" for arg in sys.argv[1:]):
        sys.exit("\n".join(line.strip() for line in __doc__.strip().splitlines()[2:4]))  # the usage lines
    else:
        phases()


if __name__ == "__main__":
    main()
