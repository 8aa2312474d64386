"""slim/fuzz: seeded request specs from a surface inventory, a runner against a live HTTP server, and
the differential comparison (5xx, hang, dead server, status class, greedy answer)."""

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from slim.errors import SlimError
from slim.fuzz.compare import compare
from slim.fuzz.drive import request_rows, write_report
from slim.fuzz.generate import MALFORMED_SHARE, RequestSpec, generate
from slim.fuzz.run import fuzz_server
from slim.fuzz.values import NO_VALUE, typed_value
from slim.surface import read_inventory
from slim.surface.policy import REFUSAL_MARK

ROUTES = ["POST /generate", "POST /v1/chat/completions", "POST /v1/completions", "POST /tokenize",
          "GET /health", "GET /v1/models", "POST /update_weights_from_disk"]
FIELDS = {
    "GenerateReqInput": {"text": "Optional[Union[List[str], str]]",
                         "return_logprob": "Optional[Union[List[bool], bool]]", "stream": "bool",
                         "sampling_params": "Optional[Dict[str, Any]]", "rid": "Optional[str]",
                         "image_data": "Optional[MultimodalDataInputFormat]", "priority": "Optional[int]"},
    "ChatCompletionRequest": {"model": "str", "messages": "List[ChatCompletionMessageParam]",
                              "top_logprobs": "Optional[int]", "logprobs": "bool", "tools": "Optional[List[Tool]]",
                              "tool_choice": "Union[ToolChoice, Literal['auto', 'required', 'none']]",
                              "separate_reasoning": "bool"},
    "CompletionRequest": {"model": "str", "prompt": "Union[List[int], List[List[int]], str, List[str]]",
                          "echo": "bool", "suffix": "Optional[str]", "logprobs": "Optional[int]"},
    "TokenizeRequest": {"model": "str", "prompt": "Union[str, List[str]]", "add_special_tokens": "bool"},
}
SAMPLING = {"temperature": "float", "top_p": "float", "top_k": "int", "max_new_tokens": "Optional[int]",
            "stop": "Optional[Union[str, List[str]]]", "logit_bias": "Optional[Dict[str, float]]", "ignore_eos": "bool"}


def inventory() -> dict:
    items = [{"id": f"route:{r}", "kind": "route", "name": r} for r in ROUTES]
    items += [{"id": f"field:{model}.{name}", "kind": "field", "name": name, "api": "native", "type": t}
              for model, fields in FIELDS.items() for name, t in fields.items()]
    items += [{"id": f"sampling:{name}", "kind": "sampling_param", "name": name, "type": t}
              for name, t in SAMPLING.items()]
    return {"schema": "slim-surface/1", "upstream": "0.5.17", "items": items}


def test_same_seed_same_specs_other_seed_other_specs():
    assert generate(inventory(), 7, 200) == generate(inventory(), 7, 200)
    assert generate(inventory(), 7, 200) != generate(inventory(), 8, 200)


def test_malformed_share_and_batches():
    specs = generate(inventory(), 3, 2000)
    share = sum(s.malformed is not None for s in specs) / len(specs)
    assert abs(share - MALFORMED_SHARE) < 0.03
    kinds = {s.malformed.split(":")[0] for s in specs if s.malformed}
    assert kinds == {"wrong_type", "out_of_range", "unknown_field", "bad_json"}
    for spec in specs:
        if spec.malformed == "bad_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(spec.body)
        elif spec.body is not None:
            json.loads(spec.body)
    sizes = [sum(s.batch == b for s in specs) for b in range(specs[-1].batch + 1)]
    assert max(sizes) > 8 and min(sizes) >= 1 and all(s <= 16 for s in sizes)


def test_every_field_used_is_in_the_inventory_and_admin_routes_are_never_sent():
    ids = {item["id"] for item in inventory()["items"]}
    specs = generate(inventory(), 11, 1000)
    used = {f for s in specs for f in s.fields}
    assert used <= ids
    assert {"sampling:temperature", "field:ChatCompletionRequest.top_logprobs", "route:GET /health"} <= used
    assert "route:POST /update_weights_from_disk" not in used
    # no value can be made blindly for a class annotation, and unique request ids are never fuzzed
    assert not used & {"field:GenerateReqInput.image_data", "field:GenerateReqInput.rid"}


def test_max_tokens_stay_short():
    for spec in generate(inventory(), 5, 500):
        if spec.body and not spec.malformed:
            body = json.loads(spec.body)
            limit = body.get("max_tokens", body.get("sampling_params", {}).get("max_new_tokens", 1))
            assert 1 <= limit <= 16


def test_typed_values_follow_the_annotation():
    rng = random.Random(0)
    assert isinstance(typed_value("Optional[int]", rng), int)
    assert all(isinstance(x, str) for x in typed_value("List[str]", rng))
    assert typed_value("Literal['low', 'high']", rng) in ("low", "high")
    assert isinstance(typed_value("list[int] | None", rng), list)
    assert typed_value("Optional[ResponseFormat]", rng) is NO_VALUE
    assert typed_value("Optional[List[Literal['message.output_text.logprobs']]]", rng)[0] == \
        "message.output_text.logprobs"


def test_a_foreign_or_missing_inventory_is_one_clear_error(tmp_path):
    with pytest.raises(SlimError, match="slim surface --derive"):
        read_inventory(tmp_path, "0.5.17")
    (tmp_path / "surface").mkdir()
    (tmp_path / "surface" / "inventory.json").write_text(json.dumps({"schema": "slim-verify/2"}))
    with pytest.raises(SlimError, match="not a surface inventory"):
        read_inventory(tmp_path, "0.5.17")


# ---------------------------------------------------------------------------------------------
# A tiny server: answers 200, but 500s on one field, hangs on another and dies on a third.


def start_server(faulty: bool, refuse: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer(200, {"data": [{"id": "tiny"}]})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
            if "bad_field" in raw:  # a 400 for bad input upstream; slim crashes on it instead
                return self.answer(500 if faulty else 400, {"error": "bad input"})
            if faulty and "crash_field" in raw:
                return self.answer(500, {"error": "AttributeError: slim removed it"})
            if faulty and "hang_field" in raw:
                threading.Event().wait(3)
                return self.answer(200, {})
            if faulty and "die_field" in raw:
                threading.Thread(target=server.shutdown).start()
                server.socket.close()
                return self.close_connection
            if refuse and "removed_field" in raw:
                return self.answer(400, {"error": f"LoRA {REFUSAL_MARK} (not a DeepSeek feature)."})
            self.answer(200, {"output_ids": [1, 2, 3], "text": "Paris"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def spec(ident: int, field: str, batch: int = 0) -> RequestSpec:
    return RequestSpec(ident, batch, 0.0, "POST", "/generate", ("route:POST /generate", f"field:X.{field}"), None,
                       json.dumps({"text": "hi", field: True}))


def fuzz(specs: list[RequestSpec], faulty: bool, refuse: bool = False) -> dict:
    server = start_server(faulty, refuse)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    run = fuzz_server(url, specs, deadline_s=1.0)
    server.shutdown()
    return run


def test_the_comparison_flags_a_500_a_hang_and_a_dead_server():
    specs = [spec(0, "ok_field"), spec(1, "crash_field"), spec(2, "hang_field"), spec(3, "ok_field", batch=1),
             spec(4, "bad_field", batch=1), spec(5, "die_field", batch=2), spec(6, "ok_field", batch=3)]
    upstream, slim = fuzz(specs, faulty=False), fuzz(specs, faulty=True)
    assert [r["class"] for r in slim["rows"]] == ["2xx", "5xx", "hang", "2xx", "5xx", "no_answer", "no_answer"]
    problems, _ = compare(specs, upstream, slim, deadline_s=1.0)
    text = "\n".join(problems)
    assert "#1 POST /generate [field:X.crash_field]: slim 500 where upstream answered 200" in text
    assert "#2 POST /generate [field:X.hang_field]: slim gave no answer within 1 s" in text
    assert "#4 POST /generate [field:X.bad_field]: slim 500 where upstream answered 400" in text
    assert "#5 POST /generate [field:X.die_field]: slim did not answer" in text
    assert "slim: /health after the run answered nothing" in text
    assert "greedy /generate after the run" in text
    assert not any(p.startswith("#0 ") or p.startswith("#3 ") for p in problems)
    rows = request_rows(specs, {"upstream": upstream, "slim": slim})
    assert rows[1]["slim"]["status"] == 500 and rows[1]["upstream"]["class"] == "2xx"


def test_the_comparison_passes_when_both_sides_behave_alike():
    specs = [spec(0, "ok_field"), spec(1, "crash_field"), spec(2, "hang_field", batch=1)]
    upstream, slim = fuzz(specs, faulty=True), fuzz(specs, faulty=True)
    problems, notes = compare(specs, upstream, slim, deadline_s=1.0)
    assert problems == []
    assert len(notes) == 2  # upstream's own 500 and hang, named, not failed on


def test_a_front_door_refusal_is_no_problem_but_another_4xx_is():
    specs = [spec(0, "removed_field")]
    upstream, slim = fuzz(specs, faulty=False), fuzz(specs, faulty=False, refuse=True)
    problems, notes = compare(specs, upstream, slim, deadline_s=1.0)
    assert problems == [] and "refused at slim's front door" in notes[0]
    slim["rows"][0]["excerpt"] = '{"error": "bad request"}'
    assert compare(specs, upstream, slim, deadline_s=1.0)[0][0].startswith("#0 POST /generate")


def test_a_start_failure_fails_the_run_and_reports_go_compact_or_gzipped(tmp_path):
    problems, _ = compare([], {"start_failure": "exited"}, {"start_failure": "not started"}, 1.0)
    assert problems == ["upstream never got healthy (exited): nothing to compare with"]
    small = write_report({"schema": "slim-fuzz/1", "rows": [1]}, tmp_path / "r.json")
    assert small.name == "r.json" and json.loads(small.read_text())["rows"] == [1]
    big = write_report({"schema": "slim-fuzz/1", "rows": ["x" * 100] * 3000}, tmp_path / "r.json")
    assert big.name == "r.json.gz" and not small.exists()
