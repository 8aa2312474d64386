"""Start-up on a fresh host, side by side on one GPU host: upstream with no JIT caches against the slimmed
tree with the JIT caches its bundle ships (`slim bundle --jit-cache`), issue 29's warm-start target.

A fresh host is emulated per start: an empty HOME (FlashInfer, tvm-ffi, DeepGEMM, Triton and the CUDA
compute cache all live under it) and an empty TorchInductor cache. `slim_bundle` then installs the
bundled cache into that HOME exactly as the bundle's unpack.sh does (slim/jit_cache.py: only where it
fits this GPU and runtime; if it does not, the report says so and the sample is a cold one).
One sample is one start: seconds from process start to /health 200, then to the answer of the first
request (greedy, one new token: the first token, after whatever JIT work the first request triggers).
Configurations are interleaved; every sample is kept, with median and spread per configuration.
Run by `ci/gpu_session.sh cold-start` (needs .carry/jit-cache.tar.xz):
    python3 benchmarks/cold_start.py --scenario dsv3_fp8_tp1 --upstream /opt/rt/up/site --slim /tmp/slim-tree/python \
        --deps /opt/rt/deps/site --jit-cache .carry/jit-cache.tar.xz --repeats 3 --budget-s 540 --out OUT.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.samples import interleaved, side_by_side_parser, spread  # noqa: E402
from scenarios.model_cache import materialize  # noqa: E402
from scenarios.server import free_port, started  # noqa: E402
from scenarios.spec import Request, load_scenario  # noqa: E402
from scenarios.workload import send  # noqa: E402
from slim import jit_cache  # noqa: E402
from slim.errors import SlimError  # noqa: E402
from slim.upstream import cache_root  # noqa: E402

SCHEMA = "slim-cold-start/1"
CONFIGS = ("upstream", "slim", "slim_bundle")
FIRST = Request("first", "/generate", body={"text": "The capital of France is",
                                            "sampling_params": {"temperature": 0, "max_new_tokens": 1}})


def fresh_env(home: Path) -> dict[str, str]:
    """The environment of a host that never compiled anything: every JIT cache under an empty `home`."""
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "TRITON_CACHE_DIR": str(home / ".triton/cache"),
            "TORCHINDUCTOR_CACHE_DIR": str(home / "inductor"), "CUDA_CACHE_PATH": str(home / ".nv/ComputeCache")}


def warm_home(home: Path, tar: Path, key: dict, deps: Path) -> str:
    """Install the bundle's cache under `home` as unpack.sh would (checked against the runtime the server
    will load: `deps`); its one line says whether it did."""
    return jit_cache.install(tar, key, home, deps)


def one_start(name: str, scenario, model: Path, pythonpath: list[Path], home: Path, logs: Path) -> dict:
    env = {**os.environ, **fresh_env(home), "PYTHONPATH": os.pathsep.join(map(str, pythonpath)), **scenario.server_env}
    port, begun = free_port(), time.monotonic()
    with started(scenario.launch_command(sys.executable, str(model), port), env, logs / f"cold-{name}.log",
                 port, health_timeout_s=900) as server:
        healthy = round(time.monotonic() - begun, 1)
        status, _ = send(server.base_url, FIRST)
        first = round(time.monotonic() - begun, 1)
    return {"healthy_s": healthy, "first_token_s": first, "first_status": status}


def main() -> None:
    parser = side_by_side_parser(__doc__.splitlines()[0])
    parser.add_argument("--jit-cache", type=Path, required=True, help="the cache the slim bundle ships")
    parser.add_argument("--configs", default="upstream,slim_bundle", help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configs = args.configs.split(",")
    if set(configs) - set(CONFIGS) or args.repeats < 1 or not args.jit_cache.is_file():
        parser.error(f"--configs takes {', '.join(CONFIGS)}; --repeats >= 1; --jit-cache must be a file")
    scenario = load_scenario(args.scenario)
    model = materialize(scenario.model, cache_root() / "models")
    key = jit_cache.full_key(args.jit_cache)
    deadline, samples, longest = time.monotonic() + args.budget_s, [], 0.0
    for repeat, name in interleaved(configs, args.repeats):
        if longest and time.monotonic() + 1.2 * longest > deadline:
            print(f"SKIP repeat {repeat} {name}: would not fit in the budget", flush=True)
            break
        tree = args.upstream if name == "upstream" else args.slim
        started_at = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="fresh-home-") as home:
            installed = warm_home(Path(home), args.jit_cache, key, args.deps) if name == "slim_bundle" else None
            try:
                result = one_start(name, scenario, model, [tree, args.deps], Path(home), args.logs)
            except SlimError as error:
                result = {"error": str(error)}
        sample = {"config": name, "repeat": repeat, "jit_cache": installed, **result}
        longest = max(longest, time.monotonic() - started_at)
        print(json.dumps(sample), flush=True)
        samples.append(sample)
    ok = [s for s in samples if "error" not in s]
    summary = {name: {m: spread([s[m] for s in ok if s["config"] == name]) for m in ("healthy_s", "first_token_s")}
               for name in configs if any(s["config"] == name for s in ok)}
    report = {"schema": SCHEMA, "benchmark": "cold_start", "scenario": scenario.name, "flags": scenario.server_args,
              "host": platform.node(), "configs": configs, "jit_cache_key": key, "repeats_planned": args.repeats,
              "order": [f"{s['config']}#{s['repeat']}" for s in samples], "samples": samples, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
