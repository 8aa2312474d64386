"""What the side-by-side GPU benchmarks share: their run order and the spread of their samples."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path


def interleaved(configs: list[str], repeats: int) -> list[tuple[int, str]]:
    """(repeat, configuration) in run order: A B A B ..., so host drift and JIT caches weigh on all alike."""
    return [(r, name) for r in range(repeats) for name in configs]


def spread(values: list[float], digits: int = 1) -> dict:
    """Median, extremes and (max - min) / median of a metric's samples."""
    median = statistics.median(values)
    return {"n": len(values), "median": round(median, digits), "min": round(min(values), digits),
            "max": round(max(values), digits),
            "spread_pct": round(100 * (max(values) - min(values)) / median, digits) if median else None}


def side_by_side_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every side-by-side benchmark takes: which scenario, the two trees, the shared
    third-party runtime, the time it may take, where logs and the report go."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scenario", default="dsv3_fp8_tp1")
    parser.add_argument("--upstream", type=Path, required=True)
    parser.add_argument("--slim", type=Path, required=True)
    parser.add_argument("--deps", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=3600, help="start no sample that would not fit")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/slim-bench-logs"))
    parser.add_argument("--out", type=Path, required=True)
    return parser
