import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from slim.dashboard import (
    diff_recordings,
    kernels,
    lines_by_subsystem,
    planned_lines_by_subsystem,
    scenario_matrix,
    scenario_summary,
    single_scenario_files,
)
from slim.plan import DefDecision, FileDecision, Plan
from slim.reasons import Reason, Why
from slim.recording import load_all
from slim.tests.dashboard_data import MODEL, MOE, write_two_scenarios


@pytest.fixture
def recordings(tmp_path):
    return load_all(write_two_scenarios(tmp_path / "db"), "0.5.17")


def write(root, files: dict[str, str]):
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_lines_by_subsystem_counts_what_was_written(tmp_path):
    upstream = write(tmp_path / "up", {MODEL: "a\nb\nc\n", "sglang/srt/models/qwen.py": "a\n", MOE: "a\nb\n",
                                       "sglang/srt/layers/x.json": "{}\n", "sglang/multimodal_gen/t.py": "a\n"})
    slimmed = write(tmp_path / "slim", {MODEL: "a\n"})  # function-level slimming left one line
    expected = pd.DataFrame({
        "subsystem": ["sglang/srt/layers", "sglang/srt/models"],
        "upstream_files": [1, 2], "upstream_lines": [2, 4],
        "kept_files": [0, 1], "kept_lines": [0, 1],
        "removed_files": [1, 1], "removed_lines": [2, 3],
    })
    assert_frame_equal(lines_by_subsystem(upstream, slimmed), expected)


def test_planned_lines_by_subsystem(tmp_path):
    files = {MODEL: "a\nb\nc\nd\n", MOE: "a\nb\n"}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    kept, gone = Reason(Why.IMPORTED, "r"), Reason(Why.UNREACHED)
    names = Plan(["r"], [FileDecision(MODEL, True, kept), FileDecision(MOE, True, kept)],
                 [DefDecision(MOE, "f", 1, "function", "delete", Reason(Why.NEVER_RUN), 1)])
    reach = Plan(["r"], [FileDecision(MODEL, True, kept), FileDecision(MOE, False, gone)],
                 [DefDecision(MODEL, "A", 1, "class", "delete", Reason(Why.NEVER_RUN), 3),
                  DefDecision(MODEL, "A.f", 2, "method", "delete", Reason(Why.IN_DELETED_CLASS),
                              2)])
    expected = pd.DataFrame({"subsystem": ["sglang/srt/layers", "sglang/srt/models"], "upstream_lines": [2, 4],
                             "names": [1, 4], "reach": [0, 1]})
    assert_frame_equal(planned_lines_by_subsystem(tmp_path, {"names": names, "reach": reach}), expected)


def test_scenario_summary(recordings):
    expected = pd.DataFrame({"scenario": ["tp1", "tp2"], "recordings": [1, 1], "modules_imported": [3, 3],
                             "functions_run": [2, 4], "files_with_functions_run": [2, 3]})
    assert_frame_equal(scenario_summary(recordings), expected)


def test_scenario_matrix(recordings):
    expected = pd.DataFrame({"tp1": [1, 0, 1], "tp2": [1, 2, 1]},
                            index=pd.Index(["sglang/srt/entrypoints", "sglang/srt/layers", "sglang/srt/models"],
                                           name="subsystem"))
    assert_frame_equal(scenario_matrix(recordings), expected, check_index_type=False)


def test_single_scenario_files(recordings):
    expected = pd.DataFrame({"file": ["sglang/launch_server.py", MOE], "subsystem": ["sglang", "sglang/srt/layers"],
                             "scenario": ["tp1", "tp2"], "functions_run": [0, 2]})
    assert_frame_equal(single_scenario_files(recordings), expected)


def test_diff_recordings(recordings):
    a, b = recordings
    expected = pd.DataFrame({
        "kind": ["module", "module", "function", "function", "module"],
        "file": ["sglang/launch_server.py", None, MOE, MOE, MOE],
        "name": ["__main__", "sglang", "_align", "fused_moe", "sglang.srt.layers.moe.fused"],
        "line": pd.array([None, None, 20, 5, None], dtype="Int64"),
        "only_in": [a.name] * 2 + [b.name] * 3,
    })
    assert_frame_equal(diff_recordings(a, b), expected, check_dtype=False)
    assert diff_recordings(a, a).empty


def test_kernels_only_where_recorded(recordings):
    expected = pd.DataFrame({"scenario": ["tp2", "tp2"], "kernel": ["fused_moe_kernel", "nvjet_gemm"],
                             "library": ["triton (sglang)", "cublas/cutlass"], "launches": [12, 30],
                             "gpu_time_us": [1500.0, 4250.5]})
    assert_frame_equal(kernels(recordings), expected)
    assert kernels(recordings[:1]).empty
    assert list(kernels(recordings[:1]).columns) == list(expected.columns)
