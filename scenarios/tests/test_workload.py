"""The workload driver against a small fake of sglang's HTTP API (stdlib server, loopback only)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scenarios.spec import SCENARIO_DIR, Request, load_scenario, scenario_names
from scenarios.workload import (
    LONG_TEXT,
    comparable,
    concurrent_runs,
    expand,
    first_mismatch,
    run_workload,
    server_facts,
)
from slim.errors import SlimError


class FakeSglang(BaseHTTPRequestHandler):
    """Echoes the prompt's length as output ids; streams three events; 400 on bad JSON."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers["Content-Length"] or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self._reply(400, {"error": "bad json"})
        if self.path == "/slow":  # counts how many requests are in flight at once
            return self._slow(body)
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
        if self.path == "/model_info":
            return self._reply(200, {"model_path": "/models/tiny"})
        self._reply(200, {"ok": True, "path": self.path})

    def _slow(self, body):
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
            self.server.arrivals.append(body["tag"])
        time.sleep(0.3)
        with self.server.lock:
            self.server.in_flight -= 1
        self._reply(200, body)

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
    server.lock, server.in_flight, server.most_in_flight, server.arrivals = threading.Lock(), 0, 0, []
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
    shifted = run_workload(url(fake_server), REQUESTS)
    mismatch = first_mismatch(reference, shifted)
    assert mismatch.startswith("greedy: .output_token_logprobs[0][0]: -1.0 != reference -0.5")
    assert first_mismatch(reference, shifted, logprob_atol=0.6) is None  # a scenario's wider tolerance


def test_a_wider_logprob_tolerance_still_compares_tokens_exactly():
    reference = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 6], "lp": [-1.0]}}]
    actual = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 9], "lp": [-1.0]}}]
    assert first_mismatch(reference, actual, logprob_atol=1.0) == "g: .output_ids[1]: 9 != reference 6"


def test_a_scenario_widens_the_logprob_tolerance_only_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    head = 'description = "d"\nmodel = "m"\n[server]\nargs = []\n'
    (tmp_path / "wide.toml").write_text(head + '[compare]\nlogprob_atol = 0.05\nreason = "measured"\n')
    (tmp_path / "bare.toml").write_text(head + "[compare]\nlogprob_atol = 0.05\n")
    assert load_scenario("wide").logprob_atol == 0.05 and load_scenario("wide").logprob_atol_reason == "measured"
    with pytest.raises(SlimError, match="bare.toml is malformed.*needs a reason"):
        load_scenario("bare")


def test_a_scenario_omits_workload_requests_only_by_name_and_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    head = 'description = "d"\nmodel = "m"\nworkload = "serving"\n[server]\nargs = []\n'
    (tmp_path / "full.toml").write_text(head)
    (tmp_path / "cut.toml").write_text(head + '[omit]\nrequests = ["chat_topk_minp_seeded"]\nreason = "r"\n')
    (tmp_path / "bare.toml").write_text(head + '[omit]\nrequests = ["chat_topk_minp_seeded"]\n')
    (tmp_path / "typo.toml").write_text(head + '[omit]\nrequests = ["chat_topk_minp"]\nreason = "r"\n')
    full = [r.name for r in load_scenario("full").requests]
    assert [r.name for r in load_scenario("cut").requests] == [n for n in full if n != "chat_topk_minp_seeded"]
    with pytest.raises(SlimError, match="bare.toml is malformed.*needs a reason"):
        load_scenario("bare")
    with pytest.raises(SlimError, match="typo.toml is malformed.*lacks: chat_topk_minp"):
        load_scenario("typo")


def test_token_mismatch_names_request_and_token():
    reference = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 6, 7]}}]
    actual = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5, 9, 7]}}]
    assert first_mismatch(reference, actual) == "g: .output_ids[1]: 9 != reference 6"
    actual[0]["status"] = 500
    assert first_mismatch(reference, actual) == "g: status 500 != reference 200"


def test_a_request_newer_than_the_reference_may_not_get_a_server_error():
    """The reference decides what is compared; a request it lacks (added to the workload later:
    a stop_regex match, an uncompilable regex) is still sent, and a 5xx there fails the run."""
    reference = [{"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5]}}]
    ok = {"name": "g", "status": 200, "compare": True, "output": {"output_ids": [5]}}
    refused = {"name": "generate_regex_invalid", "status": 400, "compare": False, "output": "bad regex"}
    assert first_mismatch(reference, [ok, refused]) is None
    crashed = {"name": "health_after_edge_requests", "status": 503, "compare": False, "output": ""}
    assert first_mismatch(reference, [ok, refused, crashed]) == (
        "health_after_edge_requests: status 503 (not in the reference: a server error all the same)")


def test_expand_fills_templates():
    assert expand({"a": ["x{i}", 3], "b": "{long_text}"}, 7) == {"a": ["x7", 3], "b": LONG_TEXT}
    assert expand({"lora_path": "{scenarios}/configs/lora/x"}) == {"lora_path": f"{SCENARIO_DIR}/configs/lora/x"}


def test_a_group_is_sent_at_once_and_its_delays_order_arrivals(fake_server):
    group = [Request(f"g{n}", "/slow", body={"tag": n}, group="mix", delay_s=0.1 * (2 - n)) for n in range(3)]
    alone = [Request("after", "/slow", body={"tag": "after"}), Request("last", "/slow", body={"tag": "last"})]
    outputs = run_workload(url(fake_server), [*group, *alone])
    assert [o["name"] for o in outputs] == ["g0", "g1", "g2", "after", "last"]  # records keep the file's order
    assert fake_server.most_in_flight == 3  # seen failing at 1 when a group ran one by one
    assert fake_server.arrivals == [2, 1, 0, "after", "last"]  # the shortest delay arrives first


def test_requests_of_different_groups_or_none_never_overlap(fake_server):
    requests = [Request("a", "/slow", body={"tag": "a"}, group="x"),
                Request("b", "/slow", body={"tag": "b"}, group="y"), Request("c", "/slow", body={"tag": "c"})]
    run_workload(url(fake_server), requests)
    assert fake_server.most_in_flight == 1


def test_a_delay_outside_a_group_is_refused():
    with pytest.raises(TypeError, match="'d' has delay_s but no group"):
        Request("d", "/generate", delay_s=0.5)


def test_the_model_path_is_asked_of_the_server_only_when_named(fake_server):
    named = Request("reload", "/update_weights_from_disk", body={"model_path": "{model_path}"})
    by_path = Request("model", "/v1/models/{model_path}", method="GET")
    assert server_facts(url(fake_server), [REQUESTS[0]]) == {}
    outputs = {o["name"]: o for o in run_workload(url(fake_server), [named, by_path])}
    assert outputs["model"]["output"]["path"] == "/v1/models//models/tiny"
    assert expand(named.body, 0, server_facts(url(fake_server), [named])) == {"model_path": "/models/tiny"}


def test_a_scenario_runs_several_workloads_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    monkeypatch.setattr("scenarios.spec.WORKLOAD_DIR", tmp_path)
    (tmp_path / "one.toml").write_text('[[requests]]\nname = "a"\npath = "/a"\n')
    (tmp_path / "two.toml").write_text('[[requests]]\nname = "b"\npath = "/b"\n')
    head = 'description = "d"\nmodel = "m"\n[server]\nargs = []\n'
    (tmp_path / "both.toml").write_text('workload = ["one", "two"]\n' + head)
    (tmp_path / "typo.toml").write_text('workload = ["one", "tow"]\n' + head)
    assert [r.name for r in load_scenario("both").requests] == ["a", "b"]
    with pytest.raises(SlimError, match="unknown workload 'tow'"):
        load_scenario("typo")


def test_every_scenario_parses_and_shares_the_serving_workload():
    """Every scenario with a server runs the serving workload, except behind --api-key (the auth workload
    sends generate requests both with the scenario's key and without it) and without a tokenizer
    (--skip-tokenizer-init: every prompt is token ids)."""
    for name in scenario_names():
        scenario = load_scenario(name)
        names = [r.name for r in scenario.requests]
        assert len(names) == len(set(names)), name
        if not scenario.server_start:
            assert not names and scenario.companions, name
        elif "--api-key" in scenario.server_args:
            key = scenario.server_args[scenario.server_args.index("--api-key") + 1]
            generate = [r for r in scenario.requests if r.path == "/generate" and r.compare]
            assert any(r.headers.get("Authorization") == f"Bearer {key}" for r in generate), name
            assert any(not r.headers for r in generate), name
        elif "--skip-tokenizer-init" in scenario.server_args:
            assert scenario.requests and all("text" not in (r.body or {}) for r in scenario.requests), name
        else:
            assert "long_prompt_chunked_prefill" in names and "concurrent_32" in names, name


CHAT_STREAM = Request("s", "/v1/chat/completions", body={"stream": True})


def test_chat_stream_joins_reasoning_and_tool_call_deltas():
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "let me "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Calling."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    assert comparable(CHAT_STREAM, events) == [{
        "text": "Calling.", "finish_reason": "tool_calls", "reasoning_content": "let me think",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}],
    }]


def test_plain_chat_stream_keeps_its_old_shape():
    """No reasoning, tools, logprobs or usage in the stream: the same two keys as older recordings."""
    events = [{"choices": [{"index": 0, "delta": {"content": "a"}}]},
              {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "length"}]}]
    assert comparable(CHAT_STREAM, events) == [{"text": "ab", "finish_reason": "length"}]


def test_stream_usage_and_logprobs_are_captured():
    events = [
        {"choices": [{"index": 0, "delta": {"content": "a"},
                      "logprobs": {"content": [{"token": "a", "logprob": -1.0}]}}], "usage": None},
        {"choices": [{"index": 0, "delta": {"content": "b"}, "logprobs": {"content": [{"token": "b", "logprob": -2.0}]},
                      "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                                  "prompt_tokens_details": {"cached_tokens": 3}}},
    ]
    assert comparable(CHAT_STREAM, events) == {
        "choices": [{"text": "ab", "finish_reason": "length",
                     "logprobs": {"content": [{"token": "a", "logprob": -1.0}, {"token": "b", "logprob": -2.0}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    completion = Request("c", "/v1/completions", body={"stream": True})
    chunks = [{"choices": [{"index": 0, "text": t, "logprobs": {"tokens": [t], "token_logprobs": [-0.5],
                                                                 "text_offset": [0]}}]} for t in "xy"]
    assert comparable(completion, chunks) == [{"text": "xy", "finish_reason": None,
                                               "logprobs": {"tokens": ["x", "y"], "token_logprobs": [-0.5, -0.5]}}]


def test_non_choice_openai_answers_are_kept_without_random_ids():
    tokenize = Request("t", "/v1/tokenize", body={"prompt": "hi"})
    assert comparable(tokenize, {"tokens": [1, 2], "count": 2, "max_model_len": 64}) == {
        "tokens": [1, 2], "count": 2, "max_model_len": 64}
    messages = Request("m", "/v1/messages", body={"max_tokens": 4})
    answer = {"id": "msg_1", "type": "message", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f"}],
              "stop_reason": "max_tokens", "usage": {"input_tokens": 3, "output_tokens": 4}}
    assert comparable(messages, answer) == {
        "type": "message", "content": [{"type": "tool_use", "name": "f"}], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 4}}
    chat = Request("c", "/v1/chat/completions", body={})
    choice = {"index": 0, "message": {"content": "x", "reasoning_content": "r", "tool_calls": [
        {"id": "call_1", "index": 0, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        "finish_reason": "tool_calls", "logprobs": None}
    assert comparable(chat, {"id": "chatcmpl-1", "choices": [choice]}) == [{
        "text": "x", "reasoning_content": "r", "finish_reason": "tool_calls", "logprobs": None,
        "tool_calls": [{"index": 0, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]


def test_keys_a_reference_lacks_are_not_compared_but_its_own_keys_are():
    reference = [{"name": "s", "status": 200, "compare": True, "output": [{"text": "", "finish_reason": "length"}]}]
    newer = [{"name": "s", "status": 200, "compare": True,
              "output": [{"text": "", "finish_reason": "length", "reasoning_content": "hmm"}]}]
    assert first_mismatch(reference, newer) is None
    assert first_mismatch(newer, reference) == "s: [0].reasoning_content: None != reference 'hmm'"


def test_the_serving_workload_covers_the_wider_surface():
    requests = {r.name: r for r in load_scenario("dsv3_fp8_tp1").requests}
    for name in ("generate_penalties_greedy", "generate_ebnf", "generate_text_in_logprobs", "chat_stream_usage",
                 "chat_tools_required", "chat_tools_named", "completions_list_prompts", "tokenize_chat_messages"):
        assert requests[name].compare, name
    for name, request in requests.items():
        body = request.body or {}
        if not (request.compare and ("temperature" in body or "sampling_params" in body)):
            continue
        params = request.body.get("sampling_params", [])
        temperatures = [p.get("temperature", 1.0) for p in (params if isinstance(params, list) else [params])]
        if "sampling_params" not in request.body:
            temperatures.append(request.body["temperature"])
        # Only greedy outputs are compared exactly (seeded sampling does not reproduce on upstream).
        assert all(t == 0 for t in temperatures), name


SURFACE = ("dsv3_fp8_tp1_surface_requests", "dsv3_fp8_tp1_surface_admin", "dsv3_fp8_tp1_surface_fields")


def _greedy(body: dict) -> bool:
    """Every sampling setting of a body is greedy: temperature 0, or top_k 1."""
    params = body.get("sampling_params", body)
    return all(p.get("temperature", 1.0) == 0 or p.get("top_k") == 1
               for p in (params if isinstance(params, list) else [params]))


@pytest.mark.parametrize("name", SURFACE)
def test_surface_scenarios_compare_only_greedy_answers_and_keep_groups_together(name):
    requests = load_scenario(name).requests
    for request in requests:
        body = request.body or {}
        if request.compare and ("temperature" in body or "sampling_params" in body):
            assert _greedy(body), request.name
    groups = [run[0].group for run in concurrent_runs(requests) if run[0].group]
    assert len(groups) == len(set(groups)), f"{name}: a group is split by other requests"


def test_the_request_surface_mixes_per_request_state_in_one_batch():
    requests = load_scenario("dsv3_fp8_tp1_surface_requests").requests
    mix = next(run for run in concurrent_runs(requests) if run[0].group == "generate_mix")
    params = [r.body.get("sampling_params") or {} for r in mix]
    used = {key for p in params for item in (p if isinstance(p, list) else [p]) for key in item}
    assert {"frequency_penalty", "logit_bias", "min_new_tokens", "stop_regex", "regex", "json_schema", "ebnf",
            "structural_tag", "custom_params", "stop_token_ids", "sampling_seed"} <= used
    assert len({r.delay_s for r in mix}) == len(mix)  # each joins the batch at its own moment


def test_a_streamed_batch_compares_each_prompts_last_chunk_whichever_finished_last():
    stream = Request("b", "/generate", body={"text": ["a", "b"], "stream": True})
    chunk = lambda index, ids, text: {"index": index, "text": text, "output_ids": ids,  # noqa: E731
                                      "meta_info": {"finish_reason": None, "completion_tokens": len(ids)}}
    one = [chunk(0, [1], "x"), chunk(1, [2], "y"), chunk(1, [3], "z"), chunk(0, [4], "w")]
    other = [chunk(0, [1], "x"), chunk(1, [2], "y"), chunk(0, [4], "w"), chunk(1, [3], "z")]
    assert comparable(stream, one) == comparable(stream, other) == [
        {"text": "w", "output_ids": [4], "finish_reason": None, "completion_tokens": 1},
        {"text": "z", "output_ids": [3], "finish_reason": None, "completion_tokens": 1}]
    single = [{"text": "ab", "output_ids": [5, 6], "meta_info": {}}]  # one prompt: no index, as before
    assert comparable(Request("s", "/generate", body={"text": "a", "stream": True}), single)["text"] == "ab"


def test_a_file_a_launch_flag_names_resolves_to_this_folder_wherever_the_server_runs():
    command = load_scenario("dsv3_fp8_tp1_config_file").launch_command("python", "/m", 30000)
    config = Path(command[command.index("--config") + 1])
    assert config.is_absolute() and config.is_file() and config.parent.parent == SCENARIO_DIR


def test_a_launch_flag_that_names_the_checkpoint_again_gets_the_model_path():
    command = load_scenario("dsv3_fp8_tp1_flags_frontdoor").launch_command("python", "/models/tiny", 30000)
    assert command[command.index("--tokenizer-path") + 1] == "/models/tiny"
    assert command[command.index("--decrypted-config-file") + 1] == "/models/tiny/config.json"
    assert not [a for a in command if "{" in a and "}" in a and "publisher" not in a and a != "{}"]
