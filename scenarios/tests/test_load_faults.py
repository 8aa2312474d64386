"""benchmarks/load_faults.py: the seeded schedule, the comparison, and one run against a small fake server."""

import importlib.util
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "load_faults", Path(__file__).resolve().parents[2] / "benchmarks" / "load_faults.py")
faults = sys.modules.setdefault("load_faults", importlib.util.module_from_spec(_spec))  # dataclasses need it there
_spec.loader.exec_module(faults)


def test_schedule_is_seeded_and_has_the_asked_shares():
    one, again, other = faults.fault_schedule(7), faults.fault_schedule(7), faults.fault_schedule(8)
    assert one == again and one != other
    kinds = [j.kind for j in one]
    assert len(one) == 64 and kinds.count("abort") == 16 and kinds.count("disconnect") == 8
    assert all(1 <= j.abort_after <= faults.NEW_TOKENS // 4 for j in one if j.kind == "abort")
    assert all(j.abort_after == 0 for j in one if j.kind != "abort")
    with pytest.raises(ValueError, match="bad schedule"):
        faults.fault_schedule(7, abort_share=0.8, disconnect_share=0.5)


def test_oversize_probes_are_longer_than_the_context():
    probes = faults.probes("tiny", 100)
    assert len(json.loads(probes["oversize_generate"][1])["input_ids"]) > 100
    assert len(json.loads(probes["oversize_completions"][1])["prompt"]) > 100
    with pytest.raises(json.JSONDecodeError):
        json.loads(probes["malformed_json_chat"][1])


def report(statuses: dict[int, int | None], probe_status: int, health: int = 200, text: str = "Paris",
           outcome: str = "complete") -> dict:
    schedule = [{"index": i, "kind": "complete", "abort_after": 0} for i in statuses]
    return {"schema": faults.SCHEMA, "seed": 7, "streams": len(statuses), "schedule": schedule, "timeout_s": 5,
            "stream_results": [{"index": i, "kind": "complete", "path": "/generate", "status": s, "outcome": outcome}
                               for i, s in statuses.items()],
            "probes": {"oversize_generate": {"outcome": "answered", "status": probe_status}},
            "after": {"health_status": health, "greedy_status": 200, "greedy_text": text}}


def test_a_5xx_counts_only_where_upstream_answered_otherwise():
    upstream = report({0: 200, 1: 200}, probe_status=500)
    assert faults.compare(upstream, report({0: 200, 1: 200}, probe_status=500)) == []
    problems = faults.compare(upstream, report({0: 200, 1: 503}, probe_status=500))
    assert problems == ["stream 1 (complete, /generate): 503 where upstream answered 200"]
    assert faults.compare(upstream, report({0: 200, 1: 200}, probe_status=400)) == []


def test_hangs_an_unhealthy_server_and_another_greedy_answer_are_problems():
    upstream = report({0: 200}, probe_status=400)
    problems = faults.compare(upstream, report({0: None}, probe_status=400, health=503, text="Rome", outcome="hung"))
    assert problems[0] == "stream 0 (complete, /generate): no end within 5 s"
    assert "/health after the load: 503" in problems
    assert problems[-1].startswith("greedy answer after the load: 'Rome'")


def test_reports_of_other_seeds_are_not_compared():
    other = {**report({0: 200}, 400), "seed": 8}
    with pytest.raises(ValueError, match="seed"):
        faults.compare(report({0: 200}, 400), other)


class FakeServer(BaseHTTPRequestHandler):
    """sglang's answers in miniature: 400 on bad JSON or an oversize prompt, 404 on an unknown model,
    slow streams; `/v1/completions` for an unknown model never answers (a hang)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/v1/models":
            return self._reply(200, {"data": [{"id": "tiny", "max_model_len": 32}]})
        return self._reply(200, {})

    def do_POST(self):  # noqa: N802
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        except json.JSONDecodeError:
            return self._reply(400, {"error": "bad json"})
        if body.get("model", "tiny") != "tiny":
            if self.path == "/v1/completions":
                time.sleep(6)
            return self._reply(404, {"error": "unknown model"})
        if len(body.get("input_ids") or body.get("prompt") or []) > 32:
            return self._reply(400, {"error": "too long"})
        if not body.get("stream"):
            return self._reply(200, {"text": " Paris"})
        self.send_response(200)
        self.end_headers()
        try:
            for n in range(24):
                self.wfile.write(f"data: {json.dumps({'text': str(n)})}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.01)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            self.server.hung_up += 1

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Backlogged(ThreadingHTTPServer):
    request_queue_size = 128  # all 16 streams and 6 probes connect at once
    daemon_threads = True


def test_a_live_run_records_every_fault_class_and_finds_the_hang():
    server = Backlogged(("127.0.0.1", 0), FakeServer)
    server.hung_up = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = faults.run_faults(f"http://127.0.0.1:{server.server_port}", seed=3, streams=16, timeout_s=3,
                                   label="fake")
    finally:
        server.shutdown()
    outcomes = {r["kind"]: set() for r in result["stream_results"]}
    for r in result["stream_results"]:
        outcomes[r["kind"]].add(r["outcome"])
    assert outcomes == {"complete": {"complete"}, "abort": {"aborted"}, "disconnect": {"disconnected"}}
    assert all(r["events"] == 24 for r in result["stream_results"] if r["kind"] == "complete")
    table = faults.status_table(result)
    assert table["malformed_json_generate"] == {"400": 1} and table["oversize_completions"] == {"400": 1}
    assert table["unknown_model_chat"] == {"404": 1} and table["unknown_model_completions"] == {"hung": 1}
    assert faults.own_problems(result) == ["unknown_model_completions: no answer within 3 s"]
    assert result["after"] == {"health_status": 200, "greedy_status": 200, "greedy_text": " Paris"}
