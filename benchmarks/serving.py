"""Serving side by side on one GPU host: upstream, upstream with the tracer, and the slimmed tree.

Same scenario flags and model for each configuration; per configuration: time to healthy, decode
throughput (64 concurrent greedy requests x 256 new tokens, after an identical warm-up round),
prefill throughput (16 requests of ~2k prompt tokens, 1 new token), peak RSS summed over the
server's processes, and peak GPU memory in use. Run by `ci/gpu_session.sh serve-bench`:
    python3 benchmarks/serving.py --scenario dsv3_fp8_tp1 --upstream /opt/rt/up/site \
        --slim /tmp/slim-tree/python --deps /opt/rt/deps/site --out OUT.json
The first configuration starts on whatever JIT caches the host has: order them so the one whose
start-up matters is not first, and read time-to-healthy with that in mind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scenarios.model_cache import materialize  # noqa: E402
from scenarios.server import Server, free_port  # noqa: E402
from scenarios.spec import Request, load_scenario  # noqa: E402
from scenarios.workload import send  # noqa: E402
from slim.record import BOOT_DIR  # noqa: E402
from slim.upstream import cache_root  # noqa: E402

DECODE = Request("decode", "/generate", body={"text": "Benchmark request {i} begins with",
                                              "sampling_params": {"temperature": 0, "max_new_tokens": 256,
                                                                  "ignore_eos": True}})
PREFILL = Request("prefill", "/generate", body={"text": "{i} " + "tokens of a long prompt " * 400,
                                                "sampling_params": {"temperature": 0, "max_new_tokens": 1}})


def fan_out(base_url: str, request: Request, n: int) -> tuple[float, list]:
    """n concurrent copies; wall seconds and the answers."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(lambda i: send(base_url, request, i)[1], range(n)))
    return time.perf_counter() - started, answers


def tokens(answers: list, key: str) -> int:
    return sum(a["meta_info"][key] for a in answers if isinstance(a, dict))


def group_peak_rss_mib(pgid: int) -> float:
    """Sum of VmHWM (peak RSS) over the live processes of a process group."""
    total_kib = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def gpu_memory_used_mib() -> int:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout
    return max(int(v) for v in out.split())


def measure(name: str, scenario, model: Path, pythonpath: list[Path], extra_env: dict, logs: Path) -> dict:
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    port = free_port()
    server = Server(scenario.launch_command(sys.executable, str(model), port), {**env, **scenario.server_env},
                    logs / f"bench-{name}.log", port)
    gpu_peak = [0]
    stop = threading.Event()

    def sample_gpu():
        while not stop.wait(1):
            gpu_peak[0] = max(gpu_peak[0], gpu_memory_used_mib())

    with tempfile.TemporaryDirectory() as cwd:
        server.start(Path(cwd))
        try:
            healthy = server.wait_healthy(600)
            threading.Thread(target=sample_gpu, daemon=True).start()
            fan_out(server.base_url, DECODE, 64)  # warm-up: same shapes as the measured round
            decode_s, decode = fan_out(server.base_url, DECODE, 64)
            fan_out(server.base_url, PREFILL, 4)
            prefill_s, prefill = fan_out(server.base_url, PREFILL, 16)
            rss = group_peak_rss_mib(os.getpgid(server.process.pid))
        finally:
            stop.set()
            server.stop()
    return {"healthy_s": healthy, "decode_tok_per_s": round(tokens(decode, "completion_tokens") / decode_s, 1),
            "prefill_tok_per_s": round(tokens(prefill, "prompt_tokens") / prefill_s, 1),
            "peak_rss_mib": round(rss, 1), "peak_gpu_mem_mib": gpu_peak[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="dsv3_fp8_tp1")
    parser.add_argument("--upstream", type=Path, required=True)
    parser.add_argument("--slim", type=Path, required=True)
    parser.add_argument("--deps", type=Path, required=True)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/slim-bench-logs"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    model = materialize(scenario.model, cache_root() / "models")
    with tempfile.TemporaryDirectory() as trace_dir:
        configs = {  # the first one pays for cold JIT caches
            "upstream_traced": ([BOOT_DIR, args.upstream, args.deps], {"SLIM_TRACE_DIR": trace_dir}),
            "upstream": ([args.upstream, args.deps], {}),
            "slim": ([args.slim, args.deps], {}),
        }
        results = {}
        for name, (path, env) in configs.items():
            results[name] = measure(name, scenario, model, path, env, args.logs)
            print(name, json.dumps(results[name]), flush=True)
    report = {"schema": "slim-benchmark/1", "benchmark": "serving", "scenario": scenario.name,
              "flags": scenario.server_args, "host": platform.node(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
