"""The workload driver against a small fake of sglang's HTTP API (stdlib server, loopback only)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scenarios.spec import Request, load_scenario, scenario_names
from scenarios.workload import LONG_TEXT, expand, first_mismatch, run_workload


class FakeSglang(BaseHTTPRequestHandler):
    """Echoes the prompt's length as output ids; streams three events; 400 on bad JSON."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers["Content-Length"] or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self._reply(400, {"error": "bad json"})
        text = body.get("text", "")
        item = {"text": text.upper(), "output_ids": [len(text), 1],
                "meta_info": {"finish_reason": {"type": "length"}, "completion_tokens": 2,
                              "output_token_logprobs": [[-0.5 - self.server.logprob_shift, 7, None]]}}
        if body.get("stream"):
            self.send_response(200)
            self.end_headers()
            for n in range(3):
                self.wfile.write(f"data: {json.dumps({**item, 'text': text[:n]})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return None
        return self._reply(200, item)

    def do_GET(self):  # noqa: N802
        self._reply(200, {"ok": True})

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSglang)
    server.logprob_shift = 0.0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


REQUESTS = [
    Request("greedy", "/generate", body={"text": "abc"}),
    Request("fan", "/generate", body={"text": "n{i}"}, fan_out=4),
    Request("stream", "/generate", body={"text": "xyz", "stream": True}),
    Request("abort", "/generate", body={"text": "xyz", "stream": True}, abort_after_events=1, compare=False),
    Request("bad", "/generate", raw_body='{"text": "unterminated', compare=False),
    Request("info", "/get_model_info", method="GET", compare=False),
]


def test_outputs_are_reduced_and_ordered(fake_server):
    outputs = {o["name"]: o for o in run_workload(url(fake_server), REQUESTS)}
    assert outputs["greedy"]["output"]["output_ids"] == [3, 1]
    assert [o["output_ids"][0] for o in outputs["fan"]["output"]] == [2, 2, 2, 2]
    assert [o["text"] for o in outputs["fan"]["output"]] == ["N0", "N1", "N2", "N3"]
    assert outputs["stream"]["output"]["text"] == "xy"  # the last event stands for the stream
    assert outputs["bad"]["status"] == 400
    assert outputs["abort"]["status"] == 200


def test_identical_runs_match_and_logprobs_have_a_tolerance(fake_server):
    reference = run_workload(url(fake_server), REQUESTS)
    fake_server.logprob_shift = 0.005
    assert first_mismatch(reference, run_workload(url(fake_server), REQUESTS)) is None
    fake_server.logprob_shift = 0.5
    mismatch = first_mismatch(reference, run_workload(url(fake_server), REQUESTS))
    assert mismatch.startswith("greedy: .output_token_logprobs[0][0]: -1.0 != reference -0.5")


def test_token_mismatch_names_request_and_token():
    reference = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 6, 7]}}]
    actual = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 9, 7]}}]
    assert first_mismatch(reference, actual) == "g: .output_ids[1]: 9 != reference 6"
    actual[0]["status"] = 500
    assert first_mismatch(reference, actual) == "g: status 500 != reference 200"


def test_expand_fills_templates():
    assert expand({"a": ["x{i}", 3], "b": "{long_text}"}, 7) == {"a": ["x7", 3], "b": LONG_TEXT}


def test_every_scenario_parses_and_shares_the_serving_workload():
    for name in scenario_names():
        scenario = load_scenario(name)
        names = [r.name for r in scenario.requests]
        assert len(names) == len(set(names)), name
        assert "long_prompt_chunked_prefill" in names and "concurrent_32" in names
