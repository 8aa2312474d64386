"""benchmarks/serving.py: run order, median and spread, install size (the parts that need no GPU)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "serving_bench", Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py")
bench = sys.modules.setdefault("serving_bench", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(bench)


def test_configurations_alternate_within_each_repeat():
    assert bench.interleaved(["upstream", "slim"], 3) == [
        (0, "upstream"), (0, "slim"), (1, "upstream"), (1, "slim"), (2, "upstream"), (2, "slim")]


def test_spread_is_the_range_over_the_median():
    assert bench.spread([100.0, 90.0, 110.0]) == {"n": 3, "median": 100.0, "min": 90.0, "max": 110.0,
                                                  "spread_pct": 20.0}
    assert bench.spread([0.0])["spread_pct"] is None


def sample(config, healthy, decode, prefill=(1000.0,)):
    return {"config": config, "repeat": 0, "healthy_s": healthy, "peak_rss_mib": 4000.0, "peak_gpu_mem_mib": 45000,
            "decode_tok_per_s": list(decode), "prefill_tok_per_s": list(prefill)}


def test_summary_pools_rounds_for_throughput_and_starts_for_start_up():
    summary = bench.summarize([sample("upstream", 50.0, [7000.0, 7100.0]), sample("slim", 40.0, [6900.0, 7000.0]),
                               sample("upstream", 60.0, [7200.0, 7300.0])])
    assert list(summary) == ["upstream", "slim"]
    assert summary["upstream"]["healthy_s"]["n"] == 2 and summary["upstream"]["healthy_s"]["median"] == 55.0
    assert summary["upstream"]["decode_tok_per_s"] == {"n": 4, "median": 7150.0, "min": 7000.0, "max": 7300.0,
                                                       "spread_pct": 4.2}
    assert summary["slim"]["peak_gpu_mem_mib"]["median"] == 45000


def test_install_size_counts_each_package_and_the_shared_deps_once(tmp_path):
    for tree, size in (("up", 300), ("slim", 100)):
        (tmp_path / tree / "sglang" / "srt").mkdir(parents=True)
        (tmp_path / tree / "sglang" / "srt" / "a.py").write_bytes(b"x" * size)
        (tmp_path / tree / "sglang" / "__pycache__").mkdir()
        (tmp_path / tree / "sglang" / "__pycache__" / "a.pyc").write_bytes(b"x" * 999)
    (tmp_path / "up" / "sglang-0.5.17.dist-info").mkdir()
    (tmp_path / "up" / "sglang-0.5.17.dist-info" / "RECORD").write_bytes(b"x" * 50)
    (tmp_path / "deps" / "torch").mkdir(parents=True)
    (tmp_path / "deps" / "torch" / "lib.so").write_bytes(b"x" * 1000)
    sizes = bench.install_size(tmp_path / "up", tmp_path / "slim", tmp_path / "deps")
    assert sizes["deps_site"] == {"bytes": 1000, "files": 1}
    assert sizes["upstream"] == {"package": {"bytes": 300, "files": 1}, "total_bytes": 1300}
    assert sizes["slim"]["total_bytes"] == 1100


@pytest.mark.parametrize("argv", [["--configs", "upstream,fast"], ["--repeats", "0"]])
def test_bad_options_stop_before_any_server_starts(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "argv", ["serving.py", "--upstream", "u", "--slim", "s", "--deps", "d", "--out", "o",
                                      *argv])
    with pytest.raises(SystemExit):
        bench.main()
    assert "--configs takes upstream, slim, upstream_traced" in capsys.readouterr().err
