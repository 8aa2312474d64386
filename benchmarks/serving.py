"""Serving side by side on one GPU host: upstream, the slimmed tree, optionally upstream with the tracer.

Same scenario flags and model for each configuration. One sample is one server start: time to
healthy, then `--rounds` measured rounds of decode throughput (64 concurrent greedy requests x 256
new tokens, after an identical warm-up round) and prefill throughput (16 requests of ~2k prompt
tokens, 1 new token), peak RSS summed over the server's processes, and peak GPU memory in use.
Configurations are interleaved (A B A B ...) for `--repeats` rounds after one unmeasured warm-up
start, so JIT caches and host drift weigh on both alike; the report gives every sample and the
median and spread per configuration, plus the install size of each tree and the shared deps.
Run by `ci/gpu_session.sh serve-bench`:
    python3 benchmarks/serving.py --scenario dsv3_fp8_tp1 --upstream /opt/rt/up/site \
        --slim /tmp/slim-tree/python --deps /opt/rt/deps/site --repeats 3 --budget-s 520 --out OUT.json
A repeat that would not fit in --budget-s is not started; the report says how many ran.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.samples import interleaved, side_by_side_parser, spread  # noqa: E402
from scenarios.model_cache import materialize  # noqa: E402
from scenarios.server import free_port, started  # noqa: E402
from scenarios.spec import Request, load_scenario  # noqa: E402
from scenarios.workload import send  # noqa: E402
from slim.errors import SlimError  # noqa: E402
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


SCHEMA = "slim-benchmark/2"  # 2: interleaved repeats, median and spread, install size
CONFIGS = ("upstream", "slim", "upstream_traced")
PER_START_METRICS = ("healthy_s", "peak_rss_mib", "peak_gpu_mem_mib")
PER_ROUND_METRICS = ("decode_tok_per_s", "prefill_tok_per_s")


def summarize(samples: list[dict]) -> dict:
    """Per configuration and metric: the spread over its starts (or over every measured round)."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(s["config"] for s in samples):
        mine = [s for s in samples if s["config"] == name]
        out[name] = {m: spread([s[m] for s in mine]) for m in PER_START_METRICS}
        out[name].update({m: spread([v for s in mine for v in s[m]]) for m in PER_ROUND_METRICS})
    return out


def tree_size(path: Path) -> dict:
    """Bytes and files under `path`, bytecode caches left out (they appear once a server ran)."""
    sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {"bytes": sum(sizes), "files": len(sizes)}


def install_size(upstream: Path, slim: Path, deps: Path) -> dict:
    """The sglang package of each tree, and the third-party site both run on (the same folder)."""
    shared = tree_size(deps)
    out = {"deps_site": shared}
    for name, root in (("upstream", upstream), ("slim", slim)):
        package = tree_size(root / "sglang")
        out[name] = {"package": package, "total_bytes": package["bytes"] + shared["bytes"]}
    return out


def measure(name: str, scenario, model: Path, pythonpath: list[Path], extra_env: dict, logs: Path,
            rounds: int) -> dict:
    """One server start: time to healthy, `rounds` decode and prefill rounds, peak RSS and GPU memory."""
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join(map(str, pythonpath)), **scenario.server_env}
    port = free_port()
    gpu_peak = [0]
    stop = threading.Event()

    def sample_gpu():
        while not stop.wait(1):
            gpu_peak[0] = max(gpu_peak[0], gpu_memory_used_mib())

    decode_rates, prefill_rates = [], []
    try:
        with started(scenario.launch_command(sys.executable, str(model), port), env, logs / f"bench-{name}.log",
                     port) as server:
            threading.Thread(target=sample_gpu, daemon=True).start()
            fan_out(server.base_url, DECODE, 64)  # warm-up: same shapes as the measured rounds
            fan_out(server.base_url, PREFILL, 4)
            for _ in range(rounds):
                decode_s, decode = fan_out(server.base_url, DECODE, 64)
                prefill_s, prefill = fan_out(server.base_url, PREFILL, 16)
                decode_rates.append(round(tokens(decode, "completion_tokens") / decode_s, 1))
                prefill_rates.append(round(tokens(prefill, "prompt_tokens") / prefill_s, 1))
            rss = group_peak_rss_mib(os.getpgid(server.process.pid))
            healthy = server.healthy_after_s
    finally:
        stop.set()
    return {"healthy_s": healthy, "decode_tok_per_s": decode_rates, "prefill_tok_per_s": prefill_rates,
            "peak_rss_mib": round(rss, 1), "peak_gpu_mem_mib": gpu_peak[0]}


def main() -> None:
    # `timeout` sends SIGTERM: exit through `finally`, so the servers started here are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = side_by_side_parser(__doc__.splitlines()[0])
    parser.add_argument("--configs", default="upstream,slim", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=3, help="server starts per configuration, interleaved")
    parser.add_argument("--rounds", type=int, default=2, help="measured decode + prefill rounds per start")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the unmeasured first start")
    args = parser.parse_args()
    configs = args.configs.split(",")
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown or args.repeats < 1 or args.rounds < 1:
        parser.error(f"--configs takes {', '.join(CONFIGS)} (not {', '.join(unknown) or '-'}); "
                     "--repeats and --rounds take >= 1")
    deadline = time.monotonic() + args.budget_s
    scenario = load_scenario(args.scenario)
    model = materialize(scenario.model, cache_root() / "models")
    sizes = install_size(args.upstream, args.slim, args.deps)  # before any server writes bytecode
    samples, longest = [], 0.0
    with tempfile.TemporaryDirectory() as trace_dir:
        paths = {"upstream_traced": ([BOOT_DIR, args.upstream, args.deps], {"SLIM_TRACE_DIR": trace_dir}),
                 "upstream": ([args.upstream, args.deps], {}), "slim": ([args.slim, args.deps], {})}
        order = ([(-1, configs[0])] if args.warmup else []) + interleaved(configs, args.repeats)
        for repeat, name in order:
            if longest and time.monotonic() + 1.2 * longest > deadline:
                print(f"SKIP repeat {repeat} {name}: would not fit in the budget", flush=True)
                break
            started_at = time.monotonic()
            try:
                result = measure(name, scenario, model, *paths[name], args.logs, args.rounds)
            except SlimError as error:  # a start that failed is a result too; the others still run
                result = {"error": str(error)}
            sample = {"config": name, "repeat": repeat, **result}
            longest = max(longest, time.monotonic() - started_at)
            print(json.dumps(sample), flush=True)
            samples.append(sample)
    measured = [s for s in samples if s["repeat"] >= 0 and "error" not in s]  # repeat -1: the warm-up start
    report = {"schema": SCHEMA, "benchmark": "serving", "scenario": scenario.name, "flags": scenario.server_args,
              "host": platform.node(), "configs": configs, "repeats_planned": args.repeats, "rounds": args.rounds,
              "order": [f"{s['config']}#{s['repeat']}" for s in samples], "samples": samples,
              "summary": summarize(measured) if measured else {}, "install_size": sizes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
