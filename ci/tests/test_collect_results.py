"""ci/collect_results.py files a device call's results: a pass on the committed tree beside its recording
(and its scenario's awaiting_verify goes), a failure under benchmarks/ without touching the earlier pass,
a waiting run's pass where it waits, the call's other files as they are; --dry-run writes nothing."""

from __future__ import annotations

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


def report(scenario: str, passed: bool, digest: str, when: str) -> bytes:
    return json.dumps({"scenario": scenario, "passed": passed, "served_digest": digest, "verified_at": when,
                       "first_mismatch": None if passed else "req: 'a' != reference 'b'",
                       "start_failure": None}).encode()


def make_repo(root: Path) -> str:
    files = {"sglang/python/sglang/__init__.py": b"",
             "scenarios/s1.toml": b'description = "d"\nawaiting_verify = "why"\n',
             "coverage_db/s1/r.json.gz": b"rec", "coverage_db/s2/r.json.gz": b"rec",
             "coverage_db/unverified/s3/r.json.gz": b"rec", "coverage_db/benchmarks/old.json": b"{}"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    tree = served_digest(root / "sglang")
    for scenario in ("s1", "s2"):
        (root / f"coverage_db/{scenario}/r.verify.json").write_bytes(report(scenario, True, "old", "2026-01-01T00:00"))
    return tree


def results(path: Path, tree: str) -> Path:
    failed = report("s2", False, tree, "2026-12-07T14:37:00")
    call = {"db/s1/r.verify.json": report("s1", True, tree, "2026-12-07T14:28:00"),
            "db/s2/r.verify.json": failed, "db/benchmarks/s2-lanes2-20261207T1437.verify.json": failed,
            "db/s3/r.verify.json": report("s3", True, tree, "2026-12-07T14:40:00"), "db/fuzz/f.json": b"{}"}
    copied = {"db/benchmarks/old.json": b"{}", "db/s1/r.json.gz": b"rec"}  # the repository's, copied in
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
    assert json.loads((db / "s1/r.verify.json").read_text())["verified_at"].startswith("2026-12-07")
    assert "awaiting_verify" not in (repo / "scenarios/s1.toml").read_text()
    assert json.loads((db / "s2/r.verify.json").read_text())["passed"]  # the earlier pass stays
    assert (db / "benchmarks/s2-lanes2-20261207T1437.verify.json").is_file()
    assert not list((db / "benchmarks").glob("s2-failed-*"))  # the same report, kept once
    assert (db / "unverified/s3/r.verify.json").is_file() and not (db / "s3").exists()
    assert any("promote it by hand" in line for line in lines)
    assert (db / "fuzz/f.json").is_file() and (db / "benchmarks/old.json").read_bytes() == b"{}"
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    collect_results.collect(tar, repo, dry_run=False)  # a later call lists these files again
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == after
