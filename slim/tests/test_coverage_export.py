import io

import coverage

from slim.coverage_export import export
from slim.recording import load_recording, merge_shards, write_recording
from slim.shards import read_shards
from tracer.tests.conftest import FIXTURE_TREE


def report(data_file):
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    out = io.StringIO()
    total = cov.report(file=out, show_missing=True)
    return total, out.getvalue()


def test_export_fixture_recording_and_report(traced_run, tmp_path):
    merged = merge_shards(read_shards(traced_run), str(FIXTURE_TREE))
    recording = {"scenario": "fixture", "upstream": {"version": "0.5.17"}, "environment": {}, "command": [],
                 "outputs": [], **merged}
    recording = load_recording(write_recording(recording, tmp_path / "r.json.gz"), "0.5.17")
    out = export(recording, FIXTURE_TREE, tmp_path / ".coverage")
    data = coverage.CoverageData(basename=str(out))
    data.read()
    deepseek = str(FIXTURE_TREE / "sglang/srt/models/deepseek.py")
    assert deepseek in data.measured_files()
    assert {1, 7, 10} <= set(data.lines(deepseek))  # <module>, __init__, forward ran
    assert 15 not in data.lines(deepseek)  # _forward_hip never ran
    total, text = report(out)
    assert 0 < total < 100
    assert "sglang/srt/models/deepseek.py" in text and "qwen.py" not in text


def test_export_line_mode_recording(traced_extra_run, tmp_path):
    merged = merge_shards(read_shards(traced_extra_run[0]), str(FIXTURE_TREE))
    out = export({"scenario": "x", **merged}, FIXTURE_TREE, tmp_path / ".coverage")
    total, text = report(out)
    row = next(line for line in text.splitlines() if "models/deepseek.py" in line)
    assert row.endswith(" 12, 16")  # missing lines: the HIP branch only
