import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE_TREE = Path(__file__).parent / "fixture_tree"
EXTRA_SERVER = Path(__file__).parent / "fixture_extra" / "extra_server.py"
BOOT_DIR = Path(__file__).resolve().parents[1] / "boot"


def run_traced(trace_dir: Path, *args: str, interval: float = 0.2, script: Path | None = None,
               **env_extra: str) -> subprocess.CompletedProcess:
    """Run `python -m sglang.server` (or a script) with the fixture tree importable and the tracer on."""
    env = {**os.environ, "SLIM_TRACE_DIR": str(trace_dir), "SLIM_TRACE_INTERVAL": str(interval),
           "PYTHONPATH": os.pathsep.join([str(BOOT_DIR), str(FIXTURE_TREE)]), **env_extra}
    entry = [str(script)] if script else ["-m", "sglang.server"]
    return subprocess.run([sys.executable, *entry, *args], env=env, cwd=trace_dir,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def traced_run(tmp_path_factory):
    """One real traced run of the fixture server, shared by the tests that read it."""
    trace_dir = tmp_path_factory.mktemp("trace")
    result = run_traced(trace_dir, "1.0")
    assert result.returncode == 0, result.stderr
    return trace_dir


@pytest.fixture(scope="session")
def traced_extra_run(tmp_path_factory):
    """The second fixture entry point in line mode; the interval is long so only exit paths flush."""
    trace_dir = tmp_path_factory.mktemp("trace-lines")
    result = run_traced(trace_dir, interval=600, script=EXTRA_SERVER, SLIM_TRACE_LINES="1",
                        SLIM_TRACE_INCLUDE=str(FIXTURE_TREE))
    assert result.returncode == 0, result.stderr
    return trace_dir, result.stdout
