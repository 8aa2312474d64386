"""Upstream vs the written slimmed tree, .py files and lines per subsystem, as a Markdown table.

    python benchmarks/subsystem_lines.py [--tree sglang] [--depth 3] [--top 20]

Counts what `slim apply` wrote (function-level slimming included), not the plan's module-level
view; the same scope as sglang/REMOVED.md (multimodal_gen and test left out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from slim.dashboard import lines_by_subsystem
from slim.upstream import default_tree, load_pin

REPO = Path(__file__).resolve().parent.parent


def subsystem_table(upstream: Path, slim: Path, depth: int) -> pd.DataFrame:
    return lines_by_subsystem(upstream, slim, depth).set_index("subsystem").sort_values(
        "upstream_lines", ascending=False)


def markdown(table: pd.DataFrame, top: int) -> str:
    def row(name: str, r) -> str:
        return (f"| {name} | {r.upstream_files:,} | {r.upstream_lines:,} | {r.kept_files:,} | "
                f"{r.kept_lines:,} | {r.kept_lines / r.upstream_lines:.1%} |")
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
