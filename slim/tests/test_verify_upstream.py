"""slim/verify.py's two sides on CPU, with the server start faked: `verify` writes its report beside the
recording, `verify_upstream` (pristine upstream, untraced: is a difference upstream's own on this host?)
under DB/benchmarks, where no verify of a slimmed tree counts it."""

from pathlib import Path

import pytest

import slim.verify as verify_module
from scenarios.hardware import Gpu
from slim.recording import Recording
from slim.serve import Run
from slim.upstream import load_pin

REFERENCE = [{"name": "generate_greedy", "status": 200, "compare": True, "output": {"text": "Paris"}}]


@pytest.fixture
def fake_host(tmp_path, monkeypatch):
    """A recording of dsv3_fp8_tp1 whose reference says "Paris"; the served text is `answer[0]`."""
    db = tmp_path / "db"
    (db / "dsv3_fp8_tp1").mkdir(parents=True)
    recording = Recording(db / "dsv3_fp8_tp1" / "20261207T000000Z-vm.json.gz",
                          {"outputs": REFERENCE, "environment": {"gpus": [{"name": "Fake GPU"}]}})
    answer = ["Paris"]
    fakes = {"detect_gpus": lambda: [Gpu("Fake GPU", 9.0, "1")], "require": lambda scenario, gpus: None,
             "latest_recording": lambda db, name: recording.path,
             "load_recording": lambda path, version: recording,
             "probe": lambda env: {"sglang_origin": env["PYTHONPATH"].split(":")[0] + "/sglang/__init__.py",
                                   "versions": {}},
             "materialize": lambda model, root: tmp_path / "model",
             "serve_scenario": lambda scenario, env, log, model: Run(
                 ["python3", "-m", "sglang.launch_server"], [{**REFERENCE[0], "output": {"text": answer[0]}}],
                 42.0, log)}
    for name, fake in fakes.items():
        monkeypatch.setattr(verify_module, name, fake)
    return tmp_path, db, answer


def site(root: Path) -> Path:
    (root / "sglang").mkdir(parents=True)
    (root / "sglang" / "__init__.py").write_text("")
    return root


def test_upstream_side_reports_under_benchmarks_with_its_own_digest(fake_host):
    tmp_path, db, answer = fake_host
    path, report = verify_module.verify_upstream("dsv3_fp8_tp1", db, site(tmp_path / "up"), tmp_path)
    assert path.parent == db / "benchmarks" and path.name.startswith("dsv3_fp8_tp1-upstream-")
    assert report["passed"] and report["served_digest"] == f"upstream_untraced {load_pin().version}"
    assert report["healthy_after_s"]["upstream_untraced"] == 42.0 and report["diagnosis"] == []
    answer[0] = "Rome"  # upstream itself drifted from its reference: a failure, with no plan to blame
    _, drifted = verify_module.verify_upstream("dsv3_fp8_tp1", db, tmp_path / "up", tmp_path)
    assert not drifted["passed"] and "Rome" in drifted["first_mismatch"] and drifted["diagnosis"] == []
    assert not list((db / "dsv3_fp8_tp1").glob("*.verify.json"))  # nothing beside the recording


def test_slim_side_reports_beside_the_recording(fake_host):
    tmp_path, db, _ = fake_host
    tree = tmp_path / "tree"
    site(tree / "python")
    path, report = verify_module.verify("dsv3_fp8_tp1", db, tree, tmp_path)
    assert path == db / "dsv3_fp8_tp1" / "20261207T000000Z-vm.verify.json" and report["passed"]
    assert report["served_digest"] == verify_module.served_digest(tree)
    assert report["healthy_after_s"]["slim"] == 42.0
