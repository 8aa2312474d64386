"""Line mode, shared libraries, opened files, SIGTERM flush, shard tolerance."""
import gzip
import json

import pytest

from slim.errors import SlimError
from slim.shards import read_shard, read_shards
from tracer.tests.conftest import EXTRA_SERVER, FIXTURE_TREE

DEEPSEEK = str(FIXTURE_TREE / "sglang/srt/models/deepseek.py")
MOE_CONFIG = str(FIXTURE_TREE / "sglang/srt/layers/configs/E=256.json")


def main_shard(shards):
    pids = {s.pid for s in shards}
    (main,) = [s for s in shards if s.ppid not in pids and s.argv[0] == str(EXTRA_SERVER)]
    return main


def test_line_mode_records_run_lines_only(traced_extra_run):
    main = main_shard(read_shards(traced_extra_run[0]))
    lines = {n for f, n in main.lines if f == DEEPSEEK}
    assert {11, 13} <= lines  # `if _is_hip:` and `return sum(...)` in forward
    assert 12 not in lines and 16 not in lines  # the HIP branch and _forward_hip never ran


def test_line_mode_honours_the_include_prefix(traced_extra_run):
    main = main_shard(read_shards(traced_extra_run[0]))
    assert main.lines and all(f.startswith(str(FIXTURE_TREE)) for f, _ in main.lines)
    assert any(f == str(EXTRA_SERVER) for f, _, _ in main.functions)  # functions stay unfiltered


def test_function_mode_shards_have_no_lines(traced_run):
    assert all(s.lines is None for s in read_shards(traced_run))


def test_shared_libs_hold_a_loaded_extension_module(traced_extra_run):
    main = main_shard(read_shards(traced_extra_run[0]))
    import _ctypes

    assert _ctypes.__file__ in main.shared_libs
    assert all(".so" in lib for lib in main.shared_libs)


def test_opened_files_hold_the_moe_config(traced_run, traced_extra_run):
    (forked,) = [s for s in read_shards(traced_run) if any(q == "detokenizer" for _, q, _ in s.functions)]
    assert MOE_CONFIG in forked.opened_files
    main = main_shard(read_shards(traced_extra_run[0]))
    assert MOE_CONFIG in main.opened_files
    assert not any(p.startswith(("/proc/", "/sys/", "/dev/")) for p in main.opened_files)
    assert not any(p.startswith(str(traced_extra_run[0])) for p in main.opened_files)  # its own shards


def test_sigtermed_child_flushes_and_still_dies_by_sigterm(traced_extra_run):
    trace_dir, stdout = traced_extra_run
    assert "worker exitcode -15" in stdout
    (worker,) = [s for s in read_shards(trace_dir) if any(q == "terminated_worker" for _, q, _ in s.functions)]
    assert any(q == "is_cuda" for _, q, _ in worker.functions)


def test_old_shards_without_new_keys_still_read(tmp_path):
    path = tmp_path / "1-1.json.gz"
    path.write_bytes(gzip.compress(json.dumps({
        "schema": "slim-shard/1", "pid": 1, "ppid": 0, "host": "h", "argv": ["x"],
        "functions": [["/a.py", "f", 1]], "modules": {}}).encode()))
    shard = read_shard(path)
    assert shard.shared_libs == () and shard.opened_files == () and shard.lines is None


def test_malformed_table_is_named(tmp_path):
    path = tmp_path / "1-1.json.gz"
    path.write_bytes(gzip.compress(json.dumps({
        "schema": "slim-shard/1", "pid": 1, "ppid": 0, "host": "h", "argv": ["x"],
        "functions": [["/a.py", "f"]], "modules": {}}).encode()))
    with pytest.raises(SlimError, match=r"1-1\.json\.gz has a malformed table"):
        read_shard(path)


def test_code_dynamo_traces_is_recorded_as_run(tmp_path, monkeypatch):
    """torch.compile traces functions without running their frames: what dynamo's TracingContext
    lists as traced counts as run (a stand-in `torch._guards`, as torch is not on CPU hosts)."""
    import os
    import sys
    import types

    from tracer.collector import Collector

    class TracingContext:  # the part of torch._guards.TracingContext the collector relies on
        def __init__(self, fake_mode):
            self.traced_code = []

    def forward_native(x):
        if x:
            return 1
        return 2

    guards = types.ModuleType("torch._guards")
    guards.TracingContext = TracingContext
    collector = Collector(str(tmp_path), 60.0, lines=True)
    os.makedirs(collector.trace_dir)  # start() makes it
    collector._watch_dynamo()  # torch not loaded yet: nothing to watch, nothing patched
    monkeypatch.setitem(sys.modules, "torch._guards", guards)
    collector._watch_dynamo()
    wrapper = TracingContext.__init__
    collector._watch_dynamo()
    assert TracingContext.__init__ is wrapper  # one wrapper, however often the flusher looks
    context = TracingContext(None)
    code = forward_native.__code__
    context.traced_code.append(code)
    collector.flush()
    assert (code.co_filename, code.co_qualname, code.co_firstlineno) in collector.functions
    first = code.co_firstlineno
    assert {(code.co_filename, first + n) for n in (1, 2, 3)} <= collector.lines
    assert type(context.traced_code) is list and context.traced_code == [code]  # dynamo's own list
    context.traced_code.append(collector.flush.__code__)  # a compile still tracing adds more later
    collector.flush()
    assert [read for _, read in collector.traced_code] == [2]  # each code read once
    assert any(qualname == "Collector.flush" for _, qualname, _ in collector.functions)
