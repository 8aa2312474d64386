"""`slim record`: run a scenario on upstream with the tracer in every process; write a recording."""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

from scenarios.hardware import detect_gpus, require
from scenarios.model_cache import materialize, model_digest
from scenarios.spec import load_scenario
from slim.errors import SlimError
from slim.kernels import TritonIndex, collect_kernels
from slim.recording import merge_shards, write_recording
from slim.runtime import gpu_lanes, host_environment, host_facts, package_root, probe
from slim.serve import serve_scenario, server_env
from slim.shards import read_shards
from slim.upstream import cache_root, load_pin, verify_tree
from tracer.collector import DEFAULT_INTERVAL

BOOT_DIR = Path(__file__).resolve().parent.parent / "tracer" / "boot"


def run_id(now: datetime.datetime, host: str) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{host.split('.')[0]}"


def record(scenario_name: str, db: Path, logs: Path, model_path: Path | None = None) -> Path:
    """Record one run of the scenario on this host's upstream sglang; return the recording's path."""
    scenario = load_scenario(scenario_name)
    gpus = detect_gpus()
    require(scenario, gpus)
    pin = load_pin()
    with tempfile.TemporaryDirectory(prefix="slim-trace-") as trace_dir, \
            tempfile.TemporaryDirectory(prefix="slim-profile-") as profile_dir:
        env = server_env([BOOT_DIR], {"SLIM_TRACE_DIR": trace_dir})
        facts = probe({k: v for k, v in env.items() if k != "SLIM_TRACE_DIR"})
        root = package_root(facts["sglang_origin"])
        verify_tree(root, pin)  # only pristine upstream may be recorded
        started = datetime.datetime.now(datetime.UTC)
        model = model_path or materialize(scenario.model, cache_root() / "models")
        run = serve_scenario(scenario, env, logs / f"{scenario.name}.upstream.log", model,
                             settle_s=DEFAULT_INTERVAL + 2, profile_dir=Path(profile_dir))
        sites = tuple(p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                      if p and Path(p) not in (BOOT_DIR, root))  # the third-party runtime folders
        coverage = merge_shards(read_shards(Path(trace_dir)), str(root), str(model), sites)
        kernels = kernel_map(run.traces, root)
    if not coverage["modules"]:
        raise SlimError(f"the tracer saw no sglang module under {root}")
    recording = {
        "scenario": scenario.name,
        "recorded_at": started.isoformat(timespec="seconds"),
        "upstream": {"version": pin.version, "record_sha256": pin.record_sha256},
        "environment": host_environment(gpus, facts["versions"]),
        "command": run.command,
        "model": {"name": scenario.model if model_path is None else str(model_path), "sha256": model_digest(model)},
        "healthy_after_s": run.healthy_after_s,
        # servers that shared the GPU while this one ran (ci/gpu_session.sh LANES): the same key as a verify's
        "lanes": gpu_lanes(),
        "outputs": run.outputs,
        **coverage,
        **kernels,
    }
    path = db / scenario.name / f"{run_id(started, host_facts()['host'])}.json.gz"
    return write_recording(recording, path)


def kernel_map(traces: list[Path], package_root: Path) -> dict:
    """GPU kernels of the profiled requests, each attributed to its @triton.jit function when it has one."""
    found = collect_kernels(traces)
    if not traces:
        found.notes.append("the server's profiler wrote no trace")
    triton = TritonIndex(package_root / "sglang")
    rows = []
    for name, launches, total_us in found.table():
        sources = triton.lookup(name)
        source = f"sglang/{sources[0][0]}::{sources[0][1]}" if len(sources) == 1 else None
        rows.append([name, launches, total_us, source])
    return {"kernels": rows, "kernel_notes": found.notes}
