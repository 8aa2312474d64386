"""`slim record`: run a scenario on upstream with the tracer in every process; write a recording."""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from scenarios.hardware import detect_gpus, require
from scenarios.spec import load_scenario
from slim.errors import SlimError
from slim.recording import merge_shards, write_recording
from slim.runtime import host_facts, package_root, probe
from slim.serve import serve_scenario, server_env
from slim.upstream import load_pin, verify_tree
from tracer.collector import DEFAULT_INTERVAL
from tracer.shards import read_shards

BOOT_DIR = Path(__file__).resolve().parent.parent / "tracer" / "boot"


def run_id(now: datetime.datetime, host: str) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{host.split('.')[0]}"


def record(scenario_name: str, db: Path, logs: Path, model_path: Path | None = None) -> Path:
    """Record one run of the scenario on this host's upstream sglang; return the recording's path."""
    scenario = load_scenario(scenario_name)
    gpus = detect_gpus()
    require(scenario, gpus)
    pin = load_pin()
    with tempfile.TemporaryDirectory(prefix="slim-trace-") as trace_dir:
        env = server_env([BOOT_DIR], {"SLIM_TRACE_DIR": trace_dir})
        facts = probe({k: v for k, v in env.items() if k != "SLIM_TRACE_DIR"})
        root = package_root(facts["sglang_origin"])
        verify_tree(root, pin)  # only pristine upstream may be recorded
        started = datetime.datetime.now(datetime.UTC)
        run = serve_scenario(scenario, env, logs / f"{scenario.name}.upstream.log", model_path,
                             settle_s=DEFAULT_INTERVAL + 2)
        coverage = merge_shards(read_shards(Path(trace_dir)), str(root))
    if not coverage["modules"]:
        raise SlimError(f"the tracer saw no sglang module under {root}")
    recording = {
        "scenario": scenario.name,
        "recorded_at": started.isoformat(timespec="seconds"),
        "upstream": {"version": pin.version, "record_sha256": pin.record_sha256},
        "environment": {**host_facts(), "gpus": [g.__dict__ for g in gpus], "versions": facts["versions"]},
        "command": run.command,
        "healthy_after_s": run.healthy_after_s,
        "outputs": run.outputs,
        **coverage,
    }
    path = db / scenario.name / f"{run_id(started, host_facts()['host'])}.json.gz"
    return write_recording(recording, path)
