"""benchmarks/results_doc.py: docs/results.md is generated from the committed result files."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
_spec = importlib.util.spec_from_file_location("results_doc", REPO / "benchmarks" / "results_doc.py")
results_doc = sys.modules.setdefault("results_doc", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(results_doc)
import results_sections  # noqa: E402  (results_doc put benchmarks/ on the path)


def test_committed_results_doc_is_what_the_result_files_give():
    diff = results_doc.check(REPO)
    assert not diff, "docs/results.md is stale; run `python benchmarks/results_doc.py`:\n" + "\n".join(diff[:60])


def copy_result_files(dst: Path) -> Path:
    """Only what the document reads: the verify reports and the recording of each failed one (whose
    stored outputs are judged again), the benchmark files, the bundle summary, REMOVED.md."""
    reports = {p: json.loads(p.read_text()) for p in REPO.glob("coverage_db/*/*.verify.json")}
    failed = [p.with_name(f"{r['recording']}.json.gz") for p, r in reports.items() if not r["passed"]]
    failed = [p for p in failed if p.is_file()]
    rels = [p.relative_to(REPO) for p in [*REPO.glob("coverage_db/*/*.json"), *REPO.glob("coverage_db/fuzz/*.json.gz"),
                                          *failed, *REPO.glob("benchmarks/results/*.json")]]
    for rel in [*rels, Path("sglang/REMOVED.md"), Path("docs/results.md")]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, dst / rel)
    return dst


def test_check_fails_when_a_result_file_changes_a_number(tmp_path):
    repo = copy_result_files(tmp_path)
    assert results_doc.main(["--check", "--repo", str(repo)]) == 0
    path = repo / "coverage_db/benchmarks/import_time-NVIDIA_H100_80GB_HBM3.json"
    data = json.loads(path.read_text())
    data["runs"]["slim"][0]["import_s"] = 99.0
    path.write_text(json.dumps(data))
    diff = results_doc.check(repo)
    assert any(line.startswith("+") and "99.00" in line for line in diff)
    assert results_doc.main(["--check", "--repo", str(repo)]) == 1
    assert results_doc.main(["--repo", str(repo)]) == 0  # regenerating makes it agree again
    assert results_doc.main(["--check", "--repo", str(repo)]) == 0


def test_spread_is_median_min_max():
    assert results_sections.spread([3.0, 1.0, 2.0, 10.0], 1) == "2.5 (1.0-10.0)"


def test_table_right_aligns_number_columns_only():
    text = results_sections.table(pd.DataFrame({"name": ["a", "b"], "n": ["1,234", "5 (4-6)"]}))
    assert text.splitlines()[:2] == ["| name | n |", "|---|---:|"]


def test_removed_md_figures_reads_the_totals():
    text = ("- `20261123T173305Z-vm`\n\n| | .py files | lines |\n|---|---:|---:|\n"
            "| upstream (LLM server) | 10 | 100 |\n| kept | 4 | 30 |\n| removed | 6 | 70 |\n\n"
            "Upstream lines of the kept files: 50; written: 30 (20 removed by function-level slimming.\n"
            "Kept by slim/policy.toml rather than by a recording: 5 upstream lines (2 entries); kept by ...\n")
    f = results_sections.removed_md_figures(text)
    assert f["rows"] == {"upstream": (10, 100), "kept": (4, 30), "removed": (6, 70)}
    assert (f["recordings"], f["function_level_removed"], f["policy_lines"], f["policy_entries"]) == (1, 20, 5, 2)


def test_the_kits_table_renders_each_test_of_a_kits_report(tmp_path):
    assert "No fuzz report with a kits section" in results_sections.kits_section(tmp_path)
    test = {"upstream": {"outcome": "pass", "excerpt": ""}, "slim": {"outcome": "fail", "excerpt": "a | b\nc"},
            "verdict": "problem"}
    report = {"scenario": "s", "fuzzed_at": "2026-12-07T10:00:00+00:00", "tree_digest": "abcdef0123", "passed": False,
              "kits": {"tests": {"k.M.test_a": test}, "verdicts": {"problem": 1},
                       "sides": {"upstream": {"ran": True, "seconds": 12.5}, "slim": {"ran": False}}}}
    (tmp_path / "coverage_db" / "fuzz").mkdir(parents=True)
    (tmp_path / "coverage_db" / "fuzz" / "s-kits-NVIDIA_H100.json").write_text(json.dumps(report))
    text = results_sections.kits_section(tmp_path)
    assert "### s (NVIDIA H100, 2026-12-07T10:00)" in text and "1 problem; kits took upstream 12.5 s" in text
    assert "| `k.M.test_a` | pass | fail | problem | a \\| b c |" in text
