"""Where the repository keeps its data: the coverage database and the committed slimmed tree.

One home for these paths so the CLI, benchmarks, notebooks and tests share them
without importing the CLI.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DB = REPO / "coverage_db"
OUT = REPO / "sglang"
