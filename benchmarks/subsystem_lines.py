"""Upstream vs the written slimmed tree, .py files and lines per subsystem, as a Markdown table.

    python benchmarks/subsystem_lines.py [--tree sglang] [--depth 3] [--top 20]

Counts what `slim apply` wrote (function-level slimming included), not the plan's module-level
view; the same scope as sglang/REMOVED.md (multimodal_gen and test left out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from slim.apply import count_lines, subsystem
from slim.plan import package_files
from slim.upstream import default_tree, load_pin

REPO = Path(__file__).resolve().parent.parent


def py_lines(root: Path, depth: int) -> pd.DataFrame:
    rows = [{"subsystem": subsystem(f, depth), "lines": count_lines(root / f)}
            for f in package_files(root) if f.endswith(".py")]
    frame = pd.DataFrame(rows, columns=["subsystem", "lines"])
    return frame.groupby("subsystem")["lines"].agg(files="size", lines="sum")


def subsystem_table(upstream: Path, slim: Path, depth: int) -> pd.DataFrame:
    table = py_lines(upstream, depth).merge(py_lines(slim, depth), how="left", left_index=True,
                                            right_index=True, suffixes=("", "_kept"))
    return table.fillna(0).astype("int64").sort_values("lines", ascending=False)


def markdown(table: pd.DataFrame, top: int) -> str:
    def row(name: str, r) -> str:
        return (f"| {name} | {r.files:,} | {r.lines:,} | {r.files_kept:,} | {r.lines_kept:,} | "
                f"{r.lines_kept / r.lines:.1%} |")
    shown, rest = table.head(top), table.iloc[top:]
    lines = ["| subsystem | upstream files | upstream lines | kept files | kept lines | kept |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [row(f"`{name}`", r) for name, r in shown.iterrows()]
    lines.append(row(f"{len(rest)} smaller subsystems", rest.sum()))
    lines.append(row("**total**", table.sum()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO / "sglang", help="the slimmed tree (holds python/)")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    upstream = default_tree(load_pin())
    print(markdown(subsystem_table(upstream, args.tree / "python", args.depth), args.top))


if __name__ == "__main__":
    main()
