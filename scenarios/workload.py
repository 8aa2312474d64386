"""Send a scenario's requests one by one and reduce each answer to what must be identical.

Requests run sequentially: a fixed order and batch composition keeps greedy
outputs bit-stable, so a reference can be compared token for token. A run of
requests sharing a `group` is the exception: they are sent at once (each after
its own delay) so that different requests share one running batch.
A server that speaks HTTPS (an https:// base URL) is reached with the ssl context passed along.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from scenarios.spec import LOGPROB_ATOL, SCENARIO_DIR, Request

TIMEOUT_S = 300  # the first prefill may JIT-compile kernels for minutes


# ~12k tokens of varied text: longer than the default chunked-prefill size.
LONG_TEXT = " ".join(f"item {n} is {'red' if n % 3 else 'blue'} and weighs {n % 17} grams;" for n in range(1500))


def expand(value, i: int = 0, facts: dict[str, str] | None = None):
    """Fill "{i}", "{long_text}", "{scenarios}" (this folder, for files a request names, such as a LoRA
    adapter to load) and each "{fact}" the server told (e.g. "{model_path}") in every string."""
    if isinstance(value, str):
        for key, fact in (facts or {}).items():
            value = value.replace(f"{{{key}}}", fact)
        return value.replace("{long_text}", LONG_TEXT).replace("{i}", str(i)).replace("{scenarios}", str(SCENARIO_DIR))
    if isinstance(value, list):
        return [expand(v, i, facts) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, i, facts) for k, v in value.items()}
    return value


# Placeholders filled from the running server's /model_info: a workload names the served model's
# own path (update_weights_from_disk reloads the same weights) without knowing where it lies.
SERVER_FACTS = ("model_path",)


def server_facts(base_url: str, requests: list[Request], context: ssl.SSLContext | None = None) -> dict[str, str]:
    """The /model_info values the requests' bodies name as placeholders; none asked, none fetched."""
    text = json.dumps([[r.body, r.path] for r in requests])
    wanted = [key for key in SERVER_FACTS if f"{{{key}}}" in text]
    if not wanted:
        return {}
    with urllib.request.urlopen(f"{base_url}/model_info", timeout=TIMEOUT_S, context=context) as response:
        info = json.loads(response.read())
    return {key: str(info[key]) for key in wanted}


def send(base_url: str, request: Request, i: int = 0, facts: dict[str, str] | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, list[dict] | dict | str]:
    """Status and decoded answer of one request (copy `i` of a fan-out); streams as event lists.
    context: what an https:// base_url is verified with (Server.ssl_context)."""
    if request.raw_body is not None:
        data = request.raw_body.encode()
    else:
        data = json.dumps(expand(request.body, i, facts)).encode() if request.body is not None else None
    url = f"{base_url}{expand(request.path, i, facts)}"
    http_request = urllib.request.Request(url, data=data, method=request.method,
                                          headers={"Content-Type": "application/json", **request.headers})
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT_S, context=context) as response:
            if request.abort_after_events:
                return response.status, _read_events_then_hang_up(response, request.abort_after_events)
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read().decode(errors="replace")
    if (request.body or {}).get("stream"):
        return status, _sse_events(raw)
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def _read_events_then_hang_up(response, events: int) -> list[dict]:
    """Read a few SSE events, then close the connection mid-stream like a departing client."""
    seen = []
    while len(seen) < events:
        line = response.readline().decode()
        if not line:
            break
        if (event := _sse_event(line)) is not None:
            seen.append(event)
    return seen


def _sse_event(line: str) -> dict | None:
    """The JSON of one `data:` line of a server-sent-event stream; None for anything else."""
    if line.startswith("data:") and line[5:].strip() != "[DONE]":
        return json.loads(line[5:])
    return None


def _sse_events(raw: str) -> list[dict]:
    return [event for line in raw.splitlines() if (event := _sse_event(line)) is not None]


LOGPROB_KEYS = ("input_token_logprobs", "output_token_logprobs", "output_top_logprobs")


def _generate_item(item: dict) -> dict:
    meta = item.get("meta_info", {})
    reduced = {"text": item.get("text"), "output_ids": item.get("output_ids"),
               "finish_reason": meta.get("finish_reason"), "completion_tokens": meta.get("completion_tokens")}
    reduced.update({key: meta[key] for key in LOGPROB_KEYS if key in meta})
    return reduced


def _openai_choice(choice: dict) -> dict:
    message = choice.get("message") or {}
    return {"text": choice.get("text", message.get("content")),
            "reasoning_content": message.get("reasoning_content"),
            "tool_calls": _without_ids(message.get("tool_calls")), "finish_reason": choice.get("finish_reason"),
            "logprobs": choice.get("logprobs")}


def _without_ids(tool_calls: list[dict] | None) -> list[dict] | None:
    """Tool-call ids are random per response; name and arguments are what must match."""
    return [{k: v for k, v in call.items() if k != "id"} for call in tool_calls] if tool_calls else tool_calls


def _openai_stream(events: list[dict]) -> list[dict] | dict:
    """Join streamed deltas per choice: chunk boundaries depend on timing, the content does not.

    Text, reasoning text and tool-call arguments are concatenated per choice (and per tool call);
    `reasoning_content`, `tool_calls` and `logprobs` appear only when the stream carried them.
    A usage chunk (stream_options.include_usage) turns the result into {"choices", "usage"}.
    """
    joined: dict[int, dict] = {}
    usage = None
    for event in events:
        if event.get("usage"):
            usage = {k: event["usage"].get(k) for k in USAGE_KEYS}
        for choice in event.get("choices", []):
            slot = joined.setdefault(choice["index"], {"text": "", "finish_reason": None})
            delta = choice.get("delta") or {}
            slot["text"] += delta.get("content") or choice.get("text") or ""
            if delta.get("reasoning_content"):
                slot["reasoning_content"] = slot.get("reasoning_content", "") + delta["reasoning_content"]
            for call in delta.get("tool_calls") or []:
                _join_tool_call(slot.setdefault("tool_calls", []), call)
            if choice.get("logprobs"):
                _join_logprobs(slot, choice["logprobs"])
            slot["finish_reason"] = choice.get("finish_reason") or slot["finish_reason"]
    choices = [joined[i] for i in sorted(joined)]
    return {"choices": choices, "usage": usage} if usage else choices


USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _join_tool_call(calls: list[dict], delta: dict) -> None:
    """Fold one tool-call delta into the choice's calls: a name opens a call, arguments append."""
    index = delta.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"type": "function", "function": {"name": None, "arguments": ""}})
    function = delta.get("function") or {}
    call = calls[index]
    call["type"] = delta.get("type") or call["type"]
    call["function"]["name"] = function.get("name") or call["function"]["name"]
    call["function"]["arguments"] += function.get("arguments") or ""


def _join_logprobs(slot: dict, logprobs: dict) -> None:
    """Chat streams carry {"content": [...]} per chunk, completion streams parallel lists
    (their text_offset counts from each chunk's own start, so it is left out)."""
    joined = slot.setdefault("logprobs", {})
    for key, value in logprobs.items():
        if isinstance(value, list) and key != "text_offset":
            joined[key] = joined.get(key, []) + value


def _streamed_generate(chunks: list) -> object:
    """A streamed /generate: its last chunk; a streamed batch (chunks carry their prompt's `index`):
    each prompt's last chunk in index order, since which prompt finishes last is a race."""
    if not chunks:
        return None
    if not all(isinstance(c, dict) and "index" in c for c in chunks):
        return _generate_item(chunks[-1])
    last = {c["index"]: c for c in chunks}
    return [_generate_item(last[i]) for i in sorted(last)]


def comparable(request: Request, answer) -> object:
    """The deterministic part of an answer: tokens, text, finish reasons; no ids or timings."""
    streamed = bool((request.body or {}).get("stream"))
    if request.path == "/generate":
        if streamed:
            return _streamed_generate(answer)
        return [_generate_item(a) for a in answer] if isinstance(answer, list) else _generate_item(answer)
    if request.path.startswith("/v1/") and request.method == "POST":
        if streamed:
            return _openai_stream(answer)
        if isinstance(answer, dict) and "choices" in answer:
            return [_openai_choice(c) for c in answer["choices"]]
        return without_keys(answer, RANDOM_KEYS.__contains__)  # /v1/tokenize, /v1/messages, ...: the whole answer
    return answer


RANDOM_KEYS = frozenset({"id", "created"})  # per-response ids and timestamps


def without_keys(value, drop: Callable[[str], bool]):
    """`value` with every dict key `drop` picks left out, at any depth."""
    if isinstance(value, dict):
        return {k: without_keys(v, drop) for k, v in value.items() if not drop(k)}
    if isinstance(value, list):
        return [without_keys(v, drop) for v in value]
    return value


def _answer(base_url: str, request: Request, facts: dict[str, str],
            context: ssl.SSLContext | None) -> tuple[int, object]:
    """Status and comparable answer; a fan-out gives the list of its copies' answers."""
    if not request.fan_out:
        status, answer = send(base_url, request, 0, facts, context)
        return status, comparable(request, answer) if status == 200 else answer
    with ThreadPoolExecutor(max_workers=request.fan_out) as pool:
        results = list(pool.map(lambda i: send(base_url, request, i, facts, context), range(request.fan_out)))
    status = max(s for s, _ in results)  # the worst status stands for the group
    return status, [comparable(request, a) if s == 200 else a for s, a in results]


def concurrent_runs(requests: list[Request]) -> list[list[Request]]:
    """The requests cut into runs sent at once: consecutive ones sharing a group, every other alone."""
    runs: list[list[Request]] = []
    for request in requests:
        if request.group and runs and runs[-1][0].group == request.group:
            runs[-1].append(request)
        else:
            runs.append([request])
    return runs


def _outcome(base_url: str, request: Request, facts: dict[str, str], context: ssl.SSLContext | None) -> dict:
    """One request's record, sent after its delay within its group (not counted in elapsed_s)."""
    time.sleep(request.delay_s)
    started = time.monotonic()
    status, output = _answer(base_url, request, facts, context)
    return {
        "name": request.name, "method": request.method, "path": request.path, "body": request.body,
        "status": status, "compare": request.compare, "output": output,
        "elapsed_s": round(time.monotonic() - started, 3),
    }


def run_workload(base_url: str, requests: list[Request], context: ssl.SSLContext | None = None) -> list[dict]:
    """Every request's status and comparable answer, in order (a group's requests sent at once);
    context: what an https:// base_url is verified with."""
    facts = server_facts(base_url, requests, context)
    outputs = []
    for run in concurrent_runs(requests):
        with ThreadPoolExecutor(max_workers=len(run)) as pool:
            outputs += pool.map(lambda request: _outcome(base_url, request, facts, context), run)
    return outputs


def first_mismatch(reference: list[dict], actual: list[dict], logprob_atol: float = LOGPROB_ATOL) -> str | None:
    """Describe the first request whose status or output differs, naming the first differing token."""
    by_name = {o["name"]: o for o in actual}
    for ref in reference:
        got = by_name.get(ref["name"])
        if got is None:
            return f"{ref['name']}: not sent"
        if got["status"] != ref["status"]:
            return f"{ref['name']}: status {got['status']} != reference {ref['status']}"
        if ref["compare"] and (where := _first_difference(ref["output"], got["output"], logprob_atol)):
            return f"{ref['name']}: {where}"
    # A request added to the workload after the reference was recorded has nothing to compare
    # with, but a server error (a crash behind it) is a failure all the same.
    referenced = {ref["name"] for ref in reference}
    for got in actual:
        if got["name"] not in referenced and got["status"] >= 500:
            return f"{got['name']}: status {got['status']} (not in the reference: a server error all the same)"
    return None


def _first_difference(want, got, atol: float, where: str = "") -> str | None:
    """Path and values of the first difference; floats (logprobs) within atol."""
    if isinstance(want, dict) and isinstance(got, dict):
        # The reference's keys are what is compared: a key that a newer comparable() adds (e.g.
        # streamed reasoning_content) does not fail references recorded before it existed.
        for key in sorted(want):
            if diff := _first_difference(want.get(key), got.get(key), atol, f"{where}.{key}"):
                return diff
        return None
    if isinstance(want, list) and isinstance(got, list):
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            if diff := _first_difference(w, g, atol, f"{where}[{i}]"):
                return diff
        return None if len(want) == len(got) else f"{where}: length {len(got)} != reference {len(want)}"
    if isinstance(want, float) and isinstance(got, float) and abs(want - got) <= atol:
        return None
    if want == got:
        return None
    return f"{where or 'output'}: {got!r:.120} != reference {want!r:.120}"
