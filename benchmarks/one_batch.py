"""Fixed-batch prefill and decode throughput, side by side on one GPU host, through upstream's own
`sglang.bench_one_batch` (one static batch, no server, no scheduler: the model forward alone).

Each sample is one run of `python3 -m sglang.bench_one_batch --model-path M <scenario flags>
--batch-size B... --input-len L --output-len O` in a fresh process with one configuration on
PYTHONPATH: upstream, the slimmed tree, or either with the tracer (`*_traced`). Runs are
interleaved (A B C A B C ...) after one unmeasured warm-up run, so JIT caches and clock drift
weigh on every configuration alike. Each (batch, input, output) shape gives per run its prefill
throughput (input tokens / prefill latency) and median decode throughput. The report keeps every
sample; per configuration the median and spread, and against upstream the ratio of medians with
the noise floor (the larger of the two spreads): a difference smaller than the noise floor is no
difference this benchmark can tell. Run by `ci/gpu_session.sh one-batch`:
    python3 benchmarks/one_batch.py --scenario dsv3_fp8_tp1 --upstream /opt/rt/up/site \
        --slim /tmp/slim-tree/python --deps /opt/rt/deps/site --repeats 5 --budget-s 500 --out OUT.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.samples import interleaved, side_by_side_parser, spread  # noqa: E402
from scenarios.model_cache import materialize  # noqa: E402
from scenarios.spec import load_scenario  # noqa: E402
from slim.record import BOOT_DIR  # noqa: E402
from slim.upstream import cache_root  # noqa: E402

SCHEMA = "slim-one-batch/1"
CONFIGS = ("upstream", "slim", "upstream_traced", "slim_traced")
METRICS = ("prefill_tok_per_s", "decode_tok_per_s")


def command(model: Path, server_args: list[str], shape: dict, result_file: Path, run_name: str) -> list[str]:
    """The bench_one_batch command line: the scenario's launch flags, one sweep of shapes."""
    return [sys.executable, "-m", "sglang.bench_one_batch", "--model-path", str(model), *server_args,
            "--batch-size", *map(str, shape["batch_size"]), "--input-len", str(shape["input_len"]),
            "--output-len", str(shape["output_len"]), "--run-name", run_name,
            "--result-filename", str(result_file)]


def rows(jsonl: str) -> list[dict]:
    """bench_one_batch's result lines as (shape, prefill and decode throughput) rows."""
    out = []
    for line in jsonl.splitlines():
        if line.strip():
            r = json.loads(line)
            out.append({"batch_size": r["batch_size"], "input_len": r["input_len"], "output_len": r["output_len"],
                        "prefill_tok_per_s": r["input_len"] * r["batch_size"] / r["prefill_latency"],
                        "decode_tok_per_s": r.get("median_decode_throughput")})
    return out


def summarize(samples: list[dict]) -> dict:
    """Per shape, configuration and metric: the spread over its runs; against upstream the ratio of
    medians and the noise floor, and whether the difference is below that floor."""
    out: dict[str, dict] = {}
    shapes = dict.fromkeys((r["batch_size"], r["input_len"], r["output_len"]) for s in samples for r in s["rows"])
    for bs, il, ol in shapes:
        key = f"bs{bs}_in{il}_out{ol}"
        per_config = {}
        for name in dict.fromkeys(s["config"] for s in samples):
            mine = [r for s in samples if s["config"] == name for r in s["rows"]
                    if (r["batch_size"], r["input_len"], r["output_len"]) == (bs, il, ol)]
            per_config[name] = {m: spread([r[m] for r in mine if r[m]], 2) for m in METRICS if any(r[m] for r in mine)}
        out[key] = per_config
        base = per_config.get("upstream", {})
        for name, metrics in per_config.items():
            if name == "upstream":
                continue
            for metric, stats in metrics.items():
                if metric in base:
                    ratio = stats["median"] / base[metric]["median"]
                    noise = max(stats["spread_pct"] or 0, base[metric]["spread_pct"] or 0)
                    stats["vs_upstream"] = {"ratio": round(ratio, 4), "noise_floor_pct": noise,
                                            "difference_pct": round(100 * (ratio - 1), 2),
                                            "below_noise": abs(100 * (ratio - 1)) <= noise}
    return out


def run_once(name: str, cmd: list[str], pythonpath: list[Path], env_extra: dict, logs: Path) -> list[dict]:
    env = {**os.environ, **env_extra, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    result_file = Path(cmd[cmd.index("--result-filename") + 1])
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"one_batch-{name}.log", "a") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=900)
    return rows(result_file.read_text())


def main() -> None:
    parser = side_by_side_parser(__doc__.splitlines()[0])
    parser.add_argument("--configs", default="upstream,slim,upstream_traced", help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration, interleaved")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=64)
    args = parser.parse_args()
    configs = args.configs.split(",")
    if set(configs) - set(CONFIGS) or args.repeats < 1:
        parser.error(f"--configs takes {', '.join(CONFIGS)}; --repeats takes >= 1")
    deadline = time.monotonic() + args.budget_s
    scenario = load_scenario(args.scenario)
    model = materialize(scenario.model, cache_root() / "models")
    shape = {"batch_size": args.batch_size, "input_len": args.input_len, "output_len": args.output_len}
    samples, longest = [], 0.0
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"upstream": args.upstream, "slim": args.slim}
        order = [(-1, configs[0])] + interleaved(configs, args.repeats)
        for repeat, name in order:
            if longest and time.monotonic() + 1.2 * longest > deadline:
                print(f"SKIP repeat {repeat} {name}: would not fit in the budget", flush=True)
                break
            tree = trees[name.removesuffix("_traced")]
            traced = name.endswith("_traced")
            pythonpath = ([BOOT_DIR] if traced else []) + [tree, args.deps]
            env = {**scenario.server_env, **({"SLIM_TRACE_DIR": f"{scratch}/trace-{repeat}"} if traced else {})}
            result_file = Path(scratch) / f"{name}-{repeat}.jsonl"
            started = time.monotonic()
            try:
                got = run_once(name, command(model, scenario.server_args, shape, result_file, f"{name}#{repeat}"),
                               pythonpath, env, args.logs)
                sample = {"config": name, "repeat": repeat, "wall_s": round(time.monotonic() - started, 1), "rows": got}
            except (subprocess.SubprocessError, OSError, ValueError, KeyError) as error:
                sample = {"config": name, "repeat": repeat, "error": f"{type(error).__name__}: {error}", "rows": []}
            longest = max(longest, time.monotonic() - started)
            print(json.dumps(sample), flush=True)
            samples.append(sample)
    measured = [s for s in samples if s["repeat"] >= 0 and "error" not in s]
    report = {"schema": SCHEMA, "benchmark": "one_batch", "scenario": scenario.name, "flags": scenario.server_args,
              "host": platform.node(), "configs": configs, "shape": shape, "repeats_planned": args.repeats,
              "order": [f"{s['config']}#{s['repeat']}" for s in samples], "samples": samples,
              "summary": summarize(measured) if measured else {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
