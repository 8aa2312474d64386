"""Import time and peak RSS of the server entry point: upstream vs slimmed tree, side by side.

Run on a GPU host (the entry point imports torch, triton, flashinfer ...):
    python3 benchmarks/import_time.py --upstream /opt/rt/up/site --slim sglang/python \
        --deps /opt/rt/deps/site --out coverage_db/benchmarks/import_time-HOST.json
Each tree is timed in fresh interpreters, alternating, so caches warm both equally.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENTRY = "sglang.srt.entrypoints.http_server"
PROBE = (
    "import resource, sys, time; t = time.perf_counter(); import {entry}; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(sys.modules))"
)


def measure(tree: Path, deps: Path) -> dict:
    """One fresh interpreter importing the entry point from `tree`: seconds, peak RSS (KiB), modules."""
    env = {"PYTHONPATH": f"{tree}:{deps}", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE.format(entry=ENTRY)], env=env, cwd="/",
                            capture_output=True, text=True, check=True)
    seconds, rss_kib, modules = result.stdout.split()[-3:]
    return {"import_s": float(seconds), "process_s": time.perf_counter() - started,
            "peak_rss_mib": int(rss_kib) / 1024, "modules": int(modules)}


def summarize(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=Path, required=True)
    parser.add_argument("--slim", type=Path, required=True)
    parser.add_argument("--deps", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"upstream": [], "slim": []}
    measure(args.upstream, args.deps)  # warm the OS page cache for shared third-party files
    for _ in range(args.repeats):
        for name, tree in (("upstream", args.upstream), ("slim", args.slim)):
            runs[name].append(measure(tree, args.deps))
    report = {
        "schema": "slim-benchmark/1", "benchmark": "import_time", "entry": ENTRY, "repeats": args.repeats,
        "host": platform.node(), "python": platform.python_version(),
        "median": {name: summarize(r) for name, r in runs.items()}, "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["median"]))


if __name__ == "__main__":
    main()
