"""ci/collect_results.py files a device call's results: a pass on the committed tree beside its recording
(and its scenario's awaiting_verify goes), a failure under benchmarks/ without touching the earlier pass,
a waiting run's pass where it waits, the call's other files as they are; --dry-run writes nothing.
A failure only in logprobs against another GPU model's reference is a pass (slim/verify.py counts_as_pass)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import tarfile
from pathlib import Path

from slim.apply import served_digest

_spec = importlib.util.spec_from_file_location("collect_results",
                                               Path(__file__).resolve().parents[1] / "collect_results.py")
collect_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collect_results)

# real scenario names: a failed report is rejudged with its scenario's workload
S1, S2, S3, S4 = "dsv3_fp8_tp1_lpm", "dsv3_fp8_tp1_evict", "dsv2_bf16_tp1_values", "dsv3_fp8_tp1_flags_ops"


def answer(text: str, logprob: float) -> list[dict]:
    return [{"name": "req", "status": 200, "compare": True, "output": {"text": text, "logprob": logprob}}]


def gpus(name: str) -> dict:
    return {"gpus": [{"name": name}]}


def report(scenario: str, passed: bool, digest: str, when: str, outputs: list[dict] | None = None,
           mismatch: str = "req: .text: 'b' != reference 'a'") -> bytes:
    outputs = outputs or answer("a" if passed else "b", -1.0)
    return json.dumps({"scenario": scenario, "passed": passed, "served_digest": digest, "verified_at": when,
                       "first_mismatch": None if passed else mismatch, "recording": "r",
                       "start_failure": None, "environment": gpus("H100"), "outputs": outputs}).encode()


def recording(gpu: str) -> bytes:
    return gzip.compress(json.dumps({"outputs": answer("a", -1.0), "environment": gpus(gpu)}).encode())


def make_repo(root: Path) -> str:
    files = {"sglang/python/sglang/__init__.py": b"",
             f"scenarios/{S1}.toml": b'description = "d"\nawaiting_verify = "why"\n',
             f"scenarios/{S4}.toml": b'description = "d"\nawaiting_verify = "why"\n',
             f"coverage_db/{S1}/r.json.gz": recording("H100"), f"coverage_db/{S2}/r.json.gz": recording("H100"),
             f"coverage_db/unverified/{S3}/r.json.gz": recording("H100"),
             f"coverage_db/{S4}/r.json.gz": recording("H200"), "coverage_db/benchmarks/old.json": b"{}"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    tree = served_digest(root / "sglang")
    for scenario in (S1, S2):
        (root / f"coverage_db/{scenario}/r.verify.json").write_bytes(report(scenario, True, "old", "2026-01-01T00:00"))
    return tree


def results(path: Path, tree: str, cross_gpu_text: str = "a") -> Path:
    failed = report(S2, False, tree, "2026-12-07T14:37:00")
    logprobs_only = report(S4, False, tree, "2026-12-07T14:45:00", answer(cross_gpu_text, -1.5),
                           "req: .logprob: -1.5 != reference -1.0")
    call = {f"db/{S1}/r.verify.json": report(S1, True, tree, "2026-12-07T14:28:00"),
            f"db/{S2}/r.verify.json": failed, f"db/benchmarks/{S2}-lanes2-20261207T1437.verify.json": failed,
            f"db/{S3}/r.verify.json": report(S3, True, tree, "2026-12-07T14:40:00"),
            f"db/{S4}/r.verify.json": logprobs_only, "db/fuzz/f.json": b"{}"}
    copied = {"db/benchmarks/old.json": b"{}", f"db/{S1}/r.json.gz": recording("H100")}  # the repository's
    with tarfile.open(path, "w:xz") as tar:
        for name, data in {**call, **copied, "written.txt": "\n".join(sorted(call)).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_calls_results_are_filed_by_what_each_report_says(tmp_path):
    repo = tmp_path / "repo"
    tree = make_repo(repo)
    tar = results(tmp_path / "results.tar.xz", tree)
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert collect_results.collect(tar, repo, dry_run=True)
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before  # --dry-run writes nothing

    lines = collect_results.collect(tar, repo, dry_run=False)
    db = repo / "coverage_db"
    assert json.loads((db / f"{S1}/r.verify.json").read_text())["verified_at"].startswith("2026-12-07")
    assert "awaiting_verify" not in (repo / f"scenarios/{S1}.toml").read_text()
    assert json.loads((db / f"{S2}/r.verify.json").read_text())["passed"]  # the earlier pass stays
    assert (db / f"benchmarks/{S2}-lanes2-20261207T1437.verify.json").is_file()
    assert not list((db / "benchmarks").glob(f"{S2}-failed-*"))  # the same report, kept once
    assert (db / f"unverified/{S3}/r.verify.json").is_file() and not (db / S3).exists()
    assert any("promote it by hand" in line for line in lines)
    assert (db / "fuzz/f.json").is_file() and (db / "benchmarks/old.json").read_bytes() == b"{}"
    # an H100 run of an H200 reference, tokens and text identical, one logprob off: a pass of the tree
    assert (db / f"{S4}/r.verify.json").is_file()
    assert "awaiting_verify" not in (repo / f"scenarios/{S4}.toml").read_text()
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    collect_results.collect(tar, repo, dry_run=False)  # a later call lists these files again
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == after


def test_a_cross_gpu_report_that_differs_in_text_is_a_failure(tmp_path):
    repo = tmp_path / "repo"
    tar = results(tmp_path / "results.tar.xz", make_repo(repo), cross_gpu_text="other")
    collect_results.collect(tar, repo, dry_run=False)
    assert not (repo / f"coverage_db/{S4}/r.verify.json").exists()
    assert list((repo / "coverage_db/benchmarks").glob(f"{S4}-failed-*"))
    assert "awaiting_verify" in (repo / f"scenarios/{S4}.toml").read_text()
