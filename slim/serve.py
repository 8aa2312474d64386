"""Run a scenario once: build its model, launch the upstream command, drive the workload, stop."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scenarios.model_cache import materialize
from scenarios.server import Server, free_port
from scenarios.spec import Scenario
from scenarios.workload import run_workload
from slim.upstream import cache_root

# A cold host JIT-compiles for minutes before /health turns 200.
HEALTH_TIMEOUT_S = float(os.environ.get("SLIM_HEALTH_TIMEOUT", 900))


@dataclass
class Run:
    command: list[str]
    outputs: list[dict]
    healthy_after_s: float
    log_path: Path


def server_env(extra_pythonpath: list[Path], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with folders put first on PYTHONPATH."""
    env = dict(os.environ)
    parts = [str(p) for p in extra_pythonpath] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.update(extra or {})
    return env


def serve_scenario(scenario: Scenario, env: dict[str, str], log_path: Path, model_path: Path | None = None,
                   settle_s: float = 0) -> Run:
    """One server start for the scenario's flags, every request of its workload, then a full stop.

    settle_s: idle time before stopping, so every process's tracer flushes once more.
    """
    model = model_path or materialize(scenario.model, cache_root() / "models")
    port = free_port()
    command = scenario.launch_command(sys.executable, str(model), port)
    server = Server(command, {**env, **scenario.server_env}, log_path, port)
    # A scratch cwd: `python -m` puts cwd first on sys.path, and no stray sglang folder may shadow the tree.
    with tempfile.TemporaryDirectory(prefix="slim-serve-") as cwd:
        server.start(Path(cwd))
        try:
            healthy = server.wait_healthy(HEALTH_TIMEOUT_S)
            outputs = run_workload(server.base_url, scenario.requests)
            time.sleep(settle_s)
        finally:
            server.stop()
    return Run(command, outputs, healthy, log_path)
