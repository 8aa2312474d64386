"""slim/fuzz/drive.py end to end on CPU: a fake `sglang.launch_server` in an upstream site and in a
slimmed tree (whose server fails one sampling parameter with a missing-symbol error), the real
scenario's launch command, the report and its diagnosis."""

import json
from pathlib import Path

import pytest

import slim.fuzz.drive as drive
from scenarios.hardware import Gpu
from slim.tests.test_fuzz import inventory

FAKE_SERVER = '''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BROKEN = {broken!r}  # a sampling parameter this tree lost the code of


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer(200, {{"data": [{{"id": "tiny"}}]}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if BROKEN and BROKEN in raw:
            print("AttributeError: module 'sglang.srt.sampling.penaltylib' has no attribute 'Broken'", flush=True)
            return self.answer(500, {{"error": "internal"}})
        self.answer(200, {{"output_ids": [1, 2, 3], "text": "Paris"}})


port = int(sys.argv[sys.argv.index("--port") + 1])
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def fake_site(root: Path, broken: str | None) -> Path:
    (root / "sglang").mkdir(parents=True)
    (root / "sglang" / "__init__.py").write_text("")
    (root / "sglang" / "launch_server.py").write_text(FAKE_SERVER.format(broken=broken))
    return root


@pytest.fixture
def fake_host(tmp_path, monkeypatch):
    monkeypatch.setattr(drive, "detect_gpus", lambda: [Gpu("Fake GPU", 9.0, "1")])
    monkeypatch.setattr(drive, "require", lambda scenario, gpus: None)
    monkeypatch.setattr(drive, "materialize", lambda model, root: tmp_path / "model")
    db = tmp_path / "db"
    (db / "surface").mkdir(parents=True)
    (db / "surface" / "inventory.json").write_text(json.dumps(inventory()))
    return tmp_path, db


def test_a_slim_500_fails_the_run_and_is_diagnosed(fake_host):
    tmp, db = fake_host
    upstream = fake_site(tmp / "up", broken=None)
    fake_site(tmp / "tree" / "python", broken='"top_k"')
    path, report = drive.fuzz_verify("dsv3_fp8_tp1", 40, 3, upstream, tmp / "tree", db, tmp / "logs",
                                     deadline_s=10, budget_s=0)
    assert path == db / "fuzz" / "dsv3_fp8_tp1-3-Fake_GPU.json"
    assert json.loads(path.read_text())["schema"] == "slim-fuzz/1"
    assert not report["passed"] and report["problems"]
    assert all("sampling:top_k" in line for line in report["problems"])
    assert report["diagnosis"] and "penaltylib" in report["diagnosis"][0]
    assert len(report["requests"]) == 40 and report["requests"][0]["upstream"]["class"] in ("2xx", "4xx")
    assert report["sides"]["slim"]["server_alive"] and "rows" not in report["sides"]["slim"]


def test_the_same_tree_on_both_sides_passes(fake_host):
    tmp, db = fake_host
    upstream = fake_site(tmp / "up", broken=None)
    fake_site(tmp / "tree" / "python", broken=None)
    _, report = drive.fuzz_verify("dsv3_fp8_tp1", 30, 4, upstream, tmp / "tree", db, tmp / "logs", deadline_s=10)
    assert report["passed"] and report["problems"] == [] and report["diagnosis"] == []


def test_a_tree_without_sglang_is_one_clear_error_before_anything_starts(fake_host):
    tmp, db = fake_host
    upstream = fake_site(tmp / "up", broken=None)
    with pytest.raises(drive.SlimError, match="--tree: .* holds no sglang package"):
        drive.fuzz_verify("dsv3_fp8_tp1", 5, 1, upstream, tmp / "no-tree", db, tmp / "logs")
    assert not (tmp / "logs").exists() and not (db / "fuzz").exists()


def test_slim_starts_when_what_upstream_took_fits_though_a_full_deadline_does_not(fake_host):
    """The call's budget went to upstream's start; what upstream took is what slim needs (a GPU call
    on 2026-12-06 left slim unstarted with 175 s left because a 180 s worst case did not fit)."""
    tmp, db = fake_host
    upstream = fake_site(tmp / "up", broken=None)
    fake_site(tmp / "tree" / "python", broken=None)
    _, report = drive.fuzz_verify("dsv3_fp8_tp1", 10, 5, upstream, tmp / "tree", db, tmp / "logs",
                                  deadline_s=60, budget_s=121)  # deadline + 60 s fits upstream only
    assert "start_failure" not in report["sides"]["slim"] and report["passed"]


def test_together_serves_both_sides_at_once_and_finds_the_same_fault(fake_host, monkeypatch):
    """--fuzz-together: both servers up at the same time (the slim side starts a stagger later), the
    same verdict and diagnosis as one after the other, and the report says how it ran."""
    tmp, db = fake_host
    monkeypatch.setattr(drive, "TOGETHER_STAGGER_S", 1)
    upstream = fake_site(tmp / "up", broken=None)
    fake_site(tmp / "tree" / "python", broken='"top_k"')
    starts = {}
    real = drive.serve_and_fuzz

    def timed(scenario, site, *args, **kwargs):
        starts[site] = drive.time.monotonic()
        run = real(scenario, site, *args, **kwargs)
        run["ended"] = drive.time.monotonic()
        return run

    monkeypatch.setattr(drive, "serve_and_fuzz", timed)
    _, report = drive.fuzz_verify("dsv3_fp8_tp1", 40, 3, upstream, tmp / "tree", db, tmp / "logs",
                                  deadline_s=10, together=True)
    assert report["together"] and not report["passed"]
    assert all("sampling:top_k" in line for line in report["problems"])
    assert report["diagnosis"] and "penaltylib" in report["diagnosis"][0]
    slim_start = starts[(tmp / "tree" / "python").resolve()]
    assert slim_start < report["sides"]["upstream"]["ended"]  # slim started before upstream was done
