import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE_TREE = Path(__file__).parent / "fixture_tree"
BOOT_DIR = Path(__file__).resolve().parents[1] / "boot"


def run_traced(trace_dir: Path, *args: str, interval: float = 0.2) -> subprocess.CompletedProcess:
    """Run `python -m sglang.server` from the fixture tree with the tracer switched on."""
    env = {**os.environ, "SLIM_TRACE_DIR": str(trace_dir), "SLIM_TRACE_INTERVAL": str(interval),
           "PYTHONPATH": os.pathsep.join([str(BOOT_DIR), str(FIXTURE_TREE)])}
    return subprocess.run([sys.executable, "-m", "sglang.server", *args], env=env, cwd=trace_dir,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def traced_run(tmp_path_factory):
    """One real traced run of the fixture server, shared by the tests that read it."""
    trace_dir = tmp_path_factory.mktemp("trace")
    result = run_traced(trace_dir, "1.0")
    assert result.returncode == 0, result.stderr
    return trace_dir
