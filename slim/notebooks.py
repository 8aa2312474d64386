"""Execute the dashboard notebooks (jupytext percent-format .py in notebooks/) in a fresh kernel.

`python -m slim.notebooks` refreshes docs/figures; notebooks/test_notebooks.py runs them in pytest.
Needs the test extras (jupytext, nbclient, ipykernel, matplotlib, squarify).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

from slim.dashboard import REPO

NOTEBOOKS = REPO / "notebooks"


def notebook_paths() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.py") if not p.name.startswith("test_"))


def execute(path: Path, figures: Path | None = None, db: Path | None = None, timeout: int = 300) -> NotebookNode:
    """Run every cell of one notebook (figures to `figures`, recordings from `db` when given).

    A failing cell raises nbclient's CellExecutionError, which shows the cell and its traceback.
    """
    notebook = jupytext.read(path)
    # No kernel folders to search: "python3" then falls back to the ipykernel of this very interpreter
    # (the venv), whatever kernels a user has installed.
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    env = {**os.environ, "MPLBACKEND": "agg"}
    if figures is not None:
        env["SLIM_FIGURES"] = str(figures)
    if db is not None:
        env["SLIM_DB"] = str(db)
    client = NotebookClient(notebook, km=kernel, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env=env)
    finally:
        if kernel.has_kernel:  # nbclient leaves a kernel it was handed running
            kernel.shutdown_kernel(now=True)
    return notebook


def main() -> None:
    for path in notebook_paths():
        start = time.monotonic()
        execute(path)
        print(f"{path.name}: {time.monotonic() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
