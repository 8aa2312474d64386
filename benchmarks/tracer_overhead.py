"""Overhead of the slim tracer against no tracer and coverage.py, on a pure-Python CPU workload.

    .venv/bin/python benchmarks/tracer_overhead.py [--reps 5] [--scale 1.0]

Each configuration runs the same workload in a fresh interpreter (start-up included),
interleaved round-robin so that drift in the machine hits every configuration alike;
the table gives the median wall time of the repetitions and the overhead against
no tracer. The workload: recursion (fib), dict- and string-heavy loops, and a few
thousand distinct small functions (so per-code-object costs show, as in a server
that imports and runs a large tree once).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOOT_DIR = Path(__file__).resolve().parents[1] / "tracer" / "boot"
DISTINCT_FUNCTIONS = 3000

WORKLOAD = '''
import sys
import many

SCALE = float(sys.argv[1])


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def dict_work(rounds):
    table = {}
    for i in range(rounds):
        key = f"k{i % 5000}"
        table[key] = table.get(key, 0) + i
        if i % 7 == 0:
            table.pop(f"k{(i * 3) % 5000}", None)
    return sum(table.values())


class Node:
    def __init__(self, value, children=()):
        self.value = value
        self.children = list(children)

    def total(self):
        return self.value + sum(child.total() for child in self.children)


def tree(depth):
    return Node(depth, [tree(depth - 1) for _ in range(3)] if depth else [])


def main():
    out = 0
    for _ in range(max(1, int(4 * SCALE))):
        out += fib(22)
        out += dict_work(int(150_000 * SCALE))
        out += tree(7).total()
    for _ in range(max(1, int(3 * SCALE))):
        out += many.run_all()
    print(out)


main()
'''


def write_workload(folder: Path) -> Path:
    functions = [f"def f{i}(x):\n    if x > {i}:\n        return x - {i}\n    return x + {i}\n" for i in
                 range(DISTINCT_FUNCTIONS)]
    table = ", ".join(f"f{i}" for i in range(DISTINCT_FUNCTIONS))
    (folder / "many.py").write_text("\n".join(functions) + f"\nFUNCTIONS = ({table})\n\n\n"
                                    "def run_all():\n    return sum(f(7) for f in FUNCTIONS)\n")
    script = folder / "workload.py"
    script.write_text(WORKLOAD)
    return script


def configurations(folder: Path, script: Path, scale: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    python = sys.executable
    plain = [python, str(script), scale]
    trace = {"PYTHONPATH": str(BOOT_DIR), "SLIM_TRACE_DIR": str(folder / "shards")}
    cover = [python, "-m", "coverage", "run", f"--data-file={folder / '.coverage'}", str(script), scale]
    return {
        "no tracer": (plain, {}),
        "slim tracer (functions)": (plain, trace),
        "slim tracer (line mode, workload files)": (plain, {**trace, "SLIM_TRACE_LINES": "1",
                                                            "SLIM_TRACE_INCLUDE": str(folder)}),
        "coverage.py, COVERAGE_CORE=sysmon": (cover, {"COVERAGE_CORE": "sysmon"}),
        "coverage.py, COVERAGE_CORE=ctrace": (cover, {"COVERAGE_CORE": "ctrace"}),
    }


def run_once(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU = user + system) seconds of one run in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLIM_TRACE", "COVERAGE_"))}
    clean.pop("PYTHONPATH", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env={**clean, **env}, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="workload size (1.0: a few seconds)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slim-bench-") as tmp:
        folder = Path(tmp)
        script = write_workload(folder)
        configs = configurations(folder, script, str(args.scale))
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
        for rep in range(args.reps):
            for name, (command, env) in configs.items():
                times[name].append(run_once(command, env, folder))
            print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
    base_wall = statistics.median(w for w, _ in times["no tracer"])
    base_cpu = statistics.median(c for _, c in times["no tracer"])
    print(f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {args.reps} repetitions, "
          f"scale {args.scale}\n")
    print("| configuration | median wall (s) | wall min-max (s) | wall overhead | median CPU (s) | CPU overhead |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, samples in times.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        walls = [w for w, _ in samples]
        if name == "no tracer":
            over_wall = over_cpu = "—"
        else:
            over_wall, over_cpu = f"{100 * (wall / base_wall - 1):+.1f}%", f"{100 * (cpu / base_cpu - 1):+.1f}%"
        print(f"| {name} | {wall:.3f} | {min(walls):.3f}-{max(walls):.3f} | {over_wall} | {cpu:.3f} | {over_cpu} |")


if __name__ == "__main__":
    main()
