import gzip
import json

import pytest

from slim.errors import SlimError
from slim.recording import merge_shards
from slim.shards import read_shard, read_shards
from tracer.tests.conftest import FIXTURE_TREE


def fixture_functions(shard):
    """Functions of the fixture package, as (relative file, qualname)."""
    root = str(FIXTURE_TREE) + "/"
    return {(f.removeprefix(root), q) for f, q, _ in shard.functions if f.startswith(root)}


def shard_running(shards, qualname):
    matches = [s for s in shards if any(q == qualname for _, q in fixture_functions(s))]
    assert matches, f"no process ran {qualname}"
    return matches


def test_every_process_writes_its_own_shard(traced_run):
    shards = read_shards(traced_run)
    # main, spawn, fork, forkserver child, doomed spawn child, subprocess child; spawn/forkserver
    # helpers (resource tracker, fork server) are Python processes too.
    assert len({s.pid for s in shards}) == len(shards) >= 6


def test_main_process_records_exactly_its_functions(traced_run):
    shards = read_shards(traced_run)
    pids = {s.pid for s in shards}
    (main,) = [s for s in shards if s.ppid not in pids and s.argv[0].endswith("sglang/server.py")]
    assert fixture_functions(main) == {
        ("sglang/__init__.py", "<module>"), ("sglang/server.py", "<module>"), ("sglang/server.py", "main"),
        ("sglang/server.py", "tokenizer_thread"), ("sglang/srt/__init__.py", "<module>"),
        ("sglang/srt/models/__init__.py", "<module>"), ("sglang/srt/models/llama.py", "<module>"),
        ("sglang/srt/models/llama.py", "LlamaForCausalLM"), ("sglang/srt/models/llama.py", "LlamaForCausalLM.forward"),
    }


def test_spawn_and_forkserver_children_record_the_scheduler(traced_run):
    schedulers = shard_running(read_shards(traced_run), "scheduler")
    assert len(schedulers) == 2  # spawn and forkserver
    for shard in schedulers:
        names = {q for _, q in fixture_functions(shard)}
        assert {"DeepseekV3ForCausalLM.forward", "DeepseekV3ForCausalLM.__init__",
                "DeepseekV3ForCausalLM.__init__.<locals>.<lambda>", "resolve", "is_hip"} <= names
        assert "DeepseekV3ForCausalLM._forward_hip" not in names


def test_forked_child_records_only_its_own_work(traced_run):
    (forked,) = shard_running(read_shards(traced_run), "detokenizer")
    names = {q for _, q in fixture_functions(forked)}
    assert "load_config" in names
    assert "main" not in names  # the parent's functions are not inherited into the child's shard


def test_python_subprocess_is_traced(traced_run):
    children = [s for s in read_shards(traced_run) if s.argv[0] == "-c"]
    assert any(("sglang/srt/utils.py", "is_hip") in fixture_functions(s) for s in children)


def test_sigkilled_process_keeps_what_it_flushed(traced_run):
    (doomed,) = shard_running(read_shards(traced_run), "doomed_worker")
    assert ("sglang/srt/utils.py", "is_cuda") in fixture_functions(doomed)


def test_modules_are_recorded_with_their_files(traced_run):
    merged = merge_shards(read_shards(traced_run), str(FIXTURE_TREE))
    modules = {name: rel for name, rel, _ in merged["modules"]}
    assert modules["sglang.srt.models.deepseek"] == "sglang/srt/models/deepseek.py"
    assert "sglang.srt.models.qwen" not in modules
    assert "sglang.lang.interpreter" not in modules


def test_truncated_shard_is_named(tmp_path):
    path = tmp_path / "host" / "1-1.json.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(b'{"schema": "slim-shard/1", "pid": 1')[:-6])
    with pytest.raises(SlimError, match=r"1-1\.json\.gz is truncated"):
        read_shards(tmp_path)


def test_foreign_shard_is_named(tmp_path):
    path = tmp_path / "x.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"schema": "coverage/7"}).encode()))
    with pytest.raises(SlimError, match=r"x\.json\.gz has schema 'coverage/7'"):
        read_shard(path)


def test_no_shards_is_an_error(tmp_path):
    with pytest.raises(SlimError, match="no shards"):
        read_shards(tmp_path)
