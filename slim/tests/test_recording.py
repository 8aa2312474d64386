import gzip
import json

import pytest

from slim.errors import SlimError
from slim.recording import load_all, load_recording, package_relative, write_recording


def test_package_relative():
    assert package_relative("/site/sglang/srt/x.py", "/site") == "sglang/srt/x.py"
    assert package_relative("/site/torch/x.py", "/site") is None
    assert package_relative("/site2/sglang/x.py", "/site") is None
    assert package_relative(None, "/site") is None


def test_round_trip_and_tables(fixture_recording):
    (recording,) = load_all(fixture_recording, "0.5.17")
    assert recording.scenario == "fixture"
    assert "sglang/srt/models/deepseek.py" in set(recording.modules["file"])
    assert list(recording.functions.columns) == ["file", "qualname", "line", "processes"]


def test_write_is_deterministic(tmp_path):
    data = {"scenario": "s", "upstream": {"version": "0.5.17"}, "environment": {}, "command": [],
            "processes": [], "modules": [], "functions": [], "outputs": []}
    a = write_recording(data, tmp_path / "a.json.gz").read_bytes()
    b = write_recording(data, tmp_path / "b.json.gz").read_bytes()
    assert a == b


def test_truncated_recording(tmp_path):
    path = tmp_path / "r.json.gz"
    path.write_bytes(gzip.compress(b'{"schema": "slim-recording/1"')[:-5])
    with pytest.raises(SlimError, match=r"r\.json\.gz is truncated"):
        load_recording(path)


def test_foreign_recording(tmp_path):
    path = tmp_path / "r.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"meta": {"version": 7}}).encode()))
    with pytest.raises(SlimError, match="has schema None, expected 'slim-recording/1'"):
        load_recording(path)


def test_recording_of_another_upstream(tmp_path):
    data = {"scenario": "s", "upstream": {"version": "0.5.10"}, "environment": {}, "command": [],
            "processes": [], "modules": [], "functions": [], "outputs": []}
    path = write_recording(data, tmp_path / "r.json.gz")
    with pytest.raises(SlimError, match="made on sglang 0.5.10, slim is pinned to 0.5.17"):
        load_recording(path, "0.5.17")


def test_empty_db(tmp_path):
    with pytest.raises(SlimError, match="no recordings"):
        load_all(tmp_path, "0.5.17")
