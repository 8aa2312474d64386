"""What the side-by-side GPU benchmarks share: their run order and the spread of their samples."""

from __future__ import annotations

import statistics


def interleaved(configs: list[str], repeats: int) -> list[tuple[int, str]]:
    """(repeat, configuration) in run order: A B A B ..., so host drift and JIT caches weigh on all alike."""
    return [(r, name) for r in range(repeats) for name in configs]


def spread(values: list[float], digits: int = 1) -> dict:
    """Median, extremes and (max - min) / median of a metric's samples."""
    median = statistics.median(values)
    return {"n": len(values), "median": round(median, digits), "min": round(min(values), digits),
            "max": round(max(values), digits),
            "spread_pct": round(100 * (max(values) - min(values)) / median, digits) if median else None}
