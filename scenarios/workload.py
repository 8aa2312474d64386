"""Send a scenario's requests one by one and reduce each answer to what must be identical.

Requests run sequentially: a fixed order and batch composition keeps greedy
outputs bit-stable, so a reference can be compared token for token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from scenarios.spec import Request

TIMEOUT_S = 300  # the first prefill may JIT-compile kernels for minutes


def _send(base_url: str, request: Request) -> tuple[int, list[dict] | dict | str]:
    data = json.dumps(request.body).encode() if request.body is not None else None
    http_request = urllib.request.Request(f"{base_url}{request.path}", data=data, method=request.method,
                                          headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(http_request, timeout=TIMEOUT_S) as response:
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read().decode(errors="replace")
    if (request.body or {}).get("stream"):
        return status, _sse_events(raw)
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def _sse_events(raw: str) -> list[dict]:
    events = []
    for line in raw.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            events.append(json.loads(line[5:]))
    return events


def _generate_item(item: dict) -> dict:
    meta = item.get("meta_info", {})
    return {"text": item.get("text"), "output_ids": item.get("output_ids"),
            "finish_reason": meta.get("finish_reason"), "completion_tokens": meta.get("completion_tokens")}


def _openai_choice(choice: dict) -> dict:
    message = choice.get("message") or {}
    return {"text": choice.get("text", message.get("content")),
            "reasoning_content": message.get("reasoning_content"),
            "tool_calls": message.get("tool_calls"), "finish_reason": choice.get("finish_reason")}


def _openai_stream(events: list[dict]) -> list[dict]:
    """Join streamed deltas per choice: chunk boundaries depend on timing, the content does not."""
    joined: dict[int, dict] = {}
    for event in events:
        for choice in event.get("choices", []):
            slot = joined.setdefault(choice["index"], {"text": "", "finish_reason": None})
            delta = choice.get("delta") or {}
            slot["text"] += delta.get("content") or choice.get("text") or ""
            slot["finish_reason"] = choice.get("finish_reason") or slot["finish_reason"]
    return [joined[i] for i in sorted(joined)]


def comparable(request: Request, answer) -> object:
    """The deterministic part of an answer: tokens, text, finish reasons; no ids or timings."""
    streamed = bool((request.body or {}).get("stream"))
    if request.path == "/generate":
        if streamed:
            return _generate_item(answer[-1]) if answer else None
        return [_generate_item(a) for a in answer] if isinstance(answer, list) else _generate_item(answer)
    if request.path.startswith("/v1/") and request.method == "POST":
        if streamed:
            return _openai_stream(answer)
        return [_openai_choice(c) for c in answer.get("choices", [])] if isinstance(answer, dict) else answer
    return answer


def run_workload(base_url: str, requests: list[Request]) -> list[dict]:
    """Every request's status and comparable answer, in order."""
    outputs = []
    for request in requests:
        started = time.monotonic()
        status, answer = _send(base_url, request)
        outputs.append({
            "name": request.name, "method": request.method, "path": request.path, "body": request.body,
            "status": status, "compare": request.compare,
            "output": comparable(request, answer) if status == 200 else answer,
            "elapsed_s": round(time.monotonic() - started, 3),
        })
    return outputs


def first_mismatch(reference: list[dict], actual: list[dict]) -> str | None:
    """Describe the first request whose status or output differs, naming the first differing token."""
    by_name = {o["name"]: o for o in actual}
    for ref in reference:
        got = by_name.get(ref["name"])
        if got is None:
            return f"{ref['name']}: not sent"
        if got["status"] != ref["status"]:
            return f"{ref['name']}: status {got['status']} != reference {ref['status']}"
        if ref["compare"] and got["output"] != ref["output"]:
            return f"{ref['name']}: {_first_difference(ref['output'], got['output'])}"
    return None


def _first_difference(want, got, where: str = "") -> str:
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                return _first_difference(want.get(key), got.get(key), f"{where}.{key}")
    if isinstance(want, list) and isinstance(got, list):
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            if w != g:
                return _first_difference(w, g, f"{where}[{i}]")
        if len(want) != len(got):
            return f"{where}: length {len(got)} != reference {len(want)}"
    return f"{where or 'output'}: {got!r:.120} != reference {want!r:.120}"
