"""Run a scenario once: build its model, launch the upstream command, drive the workload, stop."""

from __future__ import annotations

import os
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scenarios.model_cache import materialize
from scenarios.server import Server, free_port
from scenarios.spec import Request, Scenario
from scenarios.tls import client_env, write_tls_files
from scenarios.workload import run_workload
from slim.companions import placeholder_values, run_companions
from slim.upstream import cache_root

# A cold host JIT-compiles for minutes before /health turns 200.
HEALTH_TIMEOUT_S = float(os.environ.get("SLIM_HEALTH_TIMEOUT", 900))


@dataclass
class Run:
    command: list[str]
    outputs: list[dict]
    healthy_after_s: float | None  # None: the scenario starts no server
    log_path: Path
    traces: list[Path] = field(default_factory=list)


def server_env(extra_pythonpath: list[Path], extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with folders put first on PYTHONPATH."""
    env = dict(os.environ)
    parts = [str(p) for p in extra_pythonpath] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.update(extra or {})
    return env


def serve_scenario(scenario: Scenario, env: dict[str, str], log_path: Path, model_path: Path | None = None,
                   settle_s: float = 0, profile_dir: Path | None = None) -> Run:
    """One server start for the scenario's flags (every node), its whole workload, its companions
    against the live server, a full stop, then its companions that run alone.

    settle_s: idle time before stopping, so every process's tracer flushes once more.
    profile_dir: afterwards, replay a few requests under the server's torch.profiler (GPU
    activity only) and leave its traces there, for the kernel map.
    """
    model = model_path or materialize(scenario.model, cache_root() / "models")
    companion_env = {**env, **scenario.server_env}
    # A scratch cwd: `python -m` puts cwd first on sys.path, and no stray sglang folder may shadow the tree.
    with tempfile.TemporaryDirectory(prefix="slim-serve-") as cwd:
        if scenario.server_start:
            run = _serve(scenario, env, log_path, model, Path(cwd), settle_s, profile_dir)
        else:
            run = Run([], [], None, log_path)
        port = free_port()  # for an alone companion that starts a server of its own (compile_deep_gemm)
        run.outputs += run_companions(scenario.companions, "alone", sys.executable,
                                      placeholder_values(f"http://127.0.0.1:{port}", model, port),
                                      companion_env, Path(cwd), log_path)
    return run


def _serve(scenario: Scenario, env: dict[str, str], log_path: Path, model: Path, cwd: Path,
           settle_s: float, profile_dir: Path | None) -> Run:
    ports = [free_port() for _ in range(scenario.hardware.nodes)]
    # Fresh certificates beside the log (logs/S.upstream.tls/): the key stays on this host's disk only.
    tls = write_tls_files(log_path.with_suffix(".tls")) if scenario.tls else None
    plan = scenario.launch_plan(sys.executable, str(model), ports, dist_port=free_port(), tls=tls)
    servers = [  # only rank 0 serves the API (and so HTTPS): the others' health servers are not polled
        Server(launch.argv, {**env, **scenario.server_env, **launch.env},
               log_path.with_suffix(f".node{rank}.log") if rank else log_path, ports[rank],
               tls=None if rank else tls)
        for rank, launch in enumerate(plan)
    ]
    try:
        for server in servers:
            server.start(cwd)
        head = servers[0]
        healthy = head.wait_healthy(HEALTH_TIMEOUT_S)
        context = head.ssl_context
        outputs = run_workload(head.base_url, scenario.requests, context)
        traces = profile_kernels(head.base_url, scenario, profile_dir, context) if profile_dir else []
        outputs += run_companions(scenario.companions, "with_server", sys.executable,
                                  placeholder_values(head.base_url, model, head.port),
                                  {**env, **scenario.server_env, **(client_env(tls) if tls else {})}, cwd, log_path)
        time.sleep(settle_s)
    finally:
        for server in reversed(servers):
            server.stop()
    return Run(plan[0].argv, outputs, healthy, log_path, traces)


# Replayed under the profiler: prefill and decode through the native and OpenAI paths.
PROFILED_REQUESTS = ("generate_text_greedy", "generate_batch_greedy", "chat_greedy")
TRACE_WAIT_S = 180  # the profiler exports its trace after /stop_profile returns


def profile_kernels(base_url: str, scenario: Scenario, profile_dir: Path,
                    context: ssl.SSLContext | None = None) -> list[Path]:
    """Run a few of the scenario's requests between /start_profile and /stop_profile; return traces.
    A workload without them (e.g. behind --api-key) is not profiled. context: for an https:// base_url."""
    profiled = [r for r in scenario.requests if r.name in PROFILED_REQUESTS]
    if not profiled:
        return []
    profile_dir.mkdir(parents=True, exist_ok=True)
    control = {"output_dir": str(profile_dir), "activities": ["GPU"]}
    run_workload(base_url, [Request("start_profile", "/start_profile", body=control)], context)
    run_workload(base_url, profiled, context)
    run_workload(base_url, [Request("stop_profile", "/stop_profile", body={})], context)
    deadline = time.monotonic() + TRACE_WAIT_S
    while time.monotonic() < deadline:
        traces = sorted(profile_dir.rglob("*.json.gz")) + sorted(profile_dir.rglob("*.json"))
        if traces and all(_settled(t) for t in traces):
            return traces
        time.sleep(2)
    return sorted(profile_dir.rglob("*.json*"))


def _settled(path: Path) -> bool:
    """A trace whose size stopped changing for a second has been written out."""
    size = path.stat().st_size
    time.sleep(1)
    return size > 0 and path.stat().st_size == size
