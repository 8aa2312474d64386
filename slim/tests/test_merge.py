"""merge_shards' new tables: shared libraries, opened files, lines; old recordings still read."""
import sysconfig

from slim.recording import dist_relative, load_recording, merge_shards, write_recording
from slim.shards import read_shards
from tracer.tests.conftest import FIXTURE_TREE


def test_dist_relative():
    site = "/venv/lib/python3.12/site-packages"
    assert dist_relative(f"{site}/sgl_kernel/sm90/common_ops.abi3.so", "/elsewhere") == \
        "sgl_kernel/sm90/common_ops.abi3.so"
    assert dist_relative(f"{site}/sglang/srt/x.json", site) == "sglang/srt/x.json"
    assert dist_relative("/usr/lib/python3/dist-packages/numpy/x.so", site) == "numpy/x.so"
    assert dist_relative("/models/tiny/config.json", site, "/models/tiny") == "<model>/config.json"
    assert dist_relative("/root/.cache/flashinfer/jit/a.so", site) == "~/.cache/flashinfer/jit/a.so"
    assert dist_relative("/home/u/.triton/cache/k/kernel.cubin", site) == "~/.triton/cache/k/kernel.cubin"
    assert dist_relative("/root/.cache/huggingface/x", site) is None
    assert dist_relative("/tmp/x.json", site) is None
    assert dist_relative("/opt/rt/deps/site/flashinfer/data/x.cuh", site, site_roots=("/opt/rt/deps/site",)) == \
        "<site>/flashinfer/data/x.cuh"


def test_merge_keeps_package_files_and_drops_the_rest(traced_run):
    merged = merge_shards(read_shards(traced_run), str(FIXTURE_TREE))
    opened = {path: n for path, n in merged["opened_files"]}
    assert opened["sglang/srt/layers/configs/E=256.json"] == 1  # the forked detokenizer read it
    assert not any(p.endswith(".pyc") or p.startswith("/") for p in opened)
    assert "sglang/srt/models/deepseek.py" not in opened  # imported: the modules table has it
    libs = {path: n for path, n in merged["shared_libs"]}
    assert any("libc.so" in path and n == len(merged["processes"]) for path, n in libs.items())
    assert "lines" not in merged


def test_merge_names_runtime_site_files_and_third_party_modules(traced_run):
    stdlib = sysconfig.get_paths()["stdlib"]  # the fixture server's "third-party" runtime: the stdlib
    merged = merge_shards(read_shards(traced_run), str(FIXTURE_TREE), site_roots=(stdlib,))
    modules = {path: n for path, n in merged["third_party_modules"]}
    assert modules["<site>/json/__init__.py"] == len(merged["processes"])  # every process imported json
    assert not any(p.startswith("sglang/") for p in modules)  # sglang has its own tables
    assert any(p.startswith("<site>/lib-dynload/") for p, _ in merged["shared_libs"])  # _json & co.


def test_merge_of_line_mode_shards_has_lines(traced_extra_run):
    merged = merge_shards(read_shards(traced_extra_run[0]), str(FIXTURE_TREE))
    lines = {(f, n) for f, n, _ in merged["lines"]}
    assert ("sglang/srt/models/deepseek.py", 13) in lines
    assert ("sglang/srt/models/deepseek.py", 12) not in lines
    assert all(f.startswith("sglang/") for f, _ in lines)


def test_recordings_without_the_new_tables_still_load(tmp_path):
    data = {"scenario": "s", "upstream": {"version": "0.5.17"}, "environment": {}, "command": [],
            "processes": [], "modules": [], "functions": [], "outputs": []}
    recording = load_recording(write_recording(data, tmp_path / "r.json.gz"), "0.5.17")
    assert recording.shared_libs.empty and recording.opened_files.empty and recording.lines.empty
    assert not recording.has_lines
    assert list(recording.lines.columns) == ["file", "line", "processes"]
