"""benchmarks/one_batch.py on CPU: the bench_one_batch command it runs, its result lines read as
throughput rows, and the summary that says whether a difference is above the noise floor."""

import importlib.util
import json
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "one_batch", Path(__file__).resolve().parents[2] / "benchmarks" / "one_batch.py")
one_batch = sys.modules.setdefault("one_batch", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(one_batch)


def result_line(bs: int, prefill_s: float, decode_tok_s: float) -> str:
    """One line as upstream's bench_one_batch appends it to --result-filename."""
    return json.dumps({"run_name": "x", "batch_size": bs, "input_len": 512, "output_len": 64,
                       "prefill_latency": prefill_s, "median_decode_latency": bs / decode_tok_s,
                       "median_decode_throughput": decode_tok_s, "total_latency": 1.0, "overall_throughput": 1.0})


def sample(config: str, decode: dict[int, float]) -> dict:
    return {"config": config, "repeat": 0,
            "rows": one_batch.rows("\n".join(result_line(bs, 0.5, tok) for bs, tok in decode.items()) + "\n")}


def test_the_command_is_upstreams_bench_one_batch_with_the_scenario_flags(tmp_path):
    cmd = one_batch.command(Path("/m"), ["--tp", "1", "--attention-backend", "triton"],
                            {"batch_size": [1, 16], "input_len": 512, "output_len": 64}, tmp_path / "r.jsonl", "slim#0")
    assert cmd[1:5] == ["-m", "sglang.bench_one_batch", "--model-path", "/m"]
    assert cmd[5:9] == ["--tp", "1", "--attention-backend", "triton"]
    assert cmd[cmd.index("--batch-size") + 1:cmd.index("--input-len")] == ["1", "16"]
    assert cmd[-2:] == ["--result-filename", str(tmp_path / "r.jsonl")]


def test_rows_give_prefill_and_decode_throughput_per_shape():
    (row,) = one_batch.rows(result_line(16, 0.5, 800.0) + "\n\n")
    assert (row["batch_size"], row["input_len"], row["output_len"]) == (16, 512, 64)
    assert row["prefill_tok_per_s"] == 512 * 16 / 0.5 and row["decode_tok_per_s"] == 800.0


def test_a_difference_below_the_noise_floor_is_said_to_be_one():
    samples = [sample("upstream", {1: 100.0}), sample("upstream", {1: 104.0}), sample("upstream", {1: 102.0}),
               sample("slim", {1: 103.0}), sample("slim", {1: 101.0}), sample("slim", {1: 102.5})]
    summary = one_batch.summarize(samples)["bs1_in512_out64"]
    assert summary["upstream"]["decode_tok_per_s"]["median"] == 102.0
    versus = summary["slim"]["decode_tok_per_s"]["vs_upstream"]
    assert versus["noise_floor_pct"] == 3.92 and versus["below_noise"]  # upstream's own runs spread 4/102
    faster = [sample("upstream", {1: 100.0}), sample("upstream", {1: 100.5}), sample("slim", {1: 110.0}),
              sample("slim", {1: 110.2})]
    versus = one_batch.summarize(faster)["bs1_in512_out64"]["slim"]["decode_tok_per_s"]["vs_upstream"]
    assert versus["difference_pct"] > 9 and not versus["below_noise"]
