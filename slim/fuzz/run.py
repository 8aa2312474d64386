"""Send request specs to one server: each batch at once (requests start staggered, so they join
and leave a running batch), every request with its own deadline; then the after-checks. An https://
base URL is reached with the ssl context passed along (Server.ssl_context)."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from urllib.parse import urlsplit

from slim.fuzz.generate import RequestSpec
from slim.fuzz.values import MODEL_PLACEHOLDER

DEADLINE_S = 120.0
EXCERPT = 300  # characters of a non-2xx body kept: enough for an error's first line
GREEDY = {"text": "The capital of France is", "sampling_params": {"temperature": 0, "max_new_tokens": 16}}
HANG, NO_ANSWER = "hang", "no_answer"  # past the deadline; connection refused/reset (a dead server)


def status_class(status: int | None, outcome: str) -> str:
    """'2xx'/'4xx'/'5xx' for an answer, else the outcome (hang, no_answer)."""
    return f"{status // 100}xx" if status is not None else outcome


def _read_until(response: http.client.HTTPResponse, deadline: float) -> bytes | None:
    """The whole body (a stream included), or None once the deadline passes first."""
    chunks = []
    while time.monotonic() < deadline:
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    return None


def connection(base_url: str, timeout_s: float, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s, context=context)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)


def call(base_url: str, method: str, path: str, body: str | None, deadline_s: float,
         context: ssl.SSLContext | None = None) -> dict:
    """Status, class, elapsed seconds and (for a non-2xx or the after-checks) the body of one request."""
    started = time.monotonic()
    conn = connection(base_url, deadline_s, context)
    status, outcome, text = None, "answered", ""
    try:
        conn.request(method, path, body=body.encode() if body is not None else None,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = _read_until(response, started + deadline_s)
        status, outcome = (response.status, "answered") if raw is not None else (None, HANG)
        text = (raw or b"").decode(errors="replace")
    except TimeoutError:
        outcome = HANG
    except (OSError, http.client.HTTPException) as error:
        outcome, text = NO_ANSWER, type(error).__name__
    finally:
        conn.close()
    return {"status": status, "class": status_class(status, outcome), "elapsed_s": round(time.monotonic() - started, 3),
            "text": text}


def send(base_url: str, spec: RequestSpec, model: str, deadline_s: float,
         context: ssl.SSLContext | None = None) -> dict:
    """One spec, after its delay; the row keeps a body excerpt only when the answer is not 2xx."""
    time.sleep(spec.delay_s)
    body = spec.body.replace(MODEL_PLACEHOLDER, model) if spec.body is not None else None
    answer = call(base_url, spec.method, spec.path, body, deadline_s, context)
    excerpt = answer.pop("text")
    return {"id": spec.id, **answer, **({"excerpt": excerpt[:EXCERPT]} if answer["class"] != "2xx" else {})}


def run_specs(base_url: str, specs: list[RequestSpec], model: str, deadline_s: float,
              on_done: Callable[[], None] = lambda: None, context: ssl.SSLContext | None = None) -> list[dict]:
    """Every spec, batch after batch; rows in spec order."""
    rows = []
    for _, batch in groupby(specs, key=lambda spec: spec.batch):
        batch = list(batch)
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            futures = [pool.submit(send, base_url, spec, model, deadline_s, context) for spec in batch]
            for future in futures:
                rows.append(future.result())
                on_done()
    return rows


def served_model(base_url: str, deadline_s: float, context: ssl.SSLContext | None = None) -> str:
    """The served model's name (OpenAI bodies must name it); the placeholder when /v1/models fails."""
    answer = call(base_url, "GET", "/v1/models", None, deadline_s, context)
    try:
        return json.loads(answer["text"])["data"][0]["id"] if answer["status"] == 200 else MODEL_PLACEHOLDER
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        return MODEL_PLACEHOLDER


def greedy_tokens(answer: dict) -> list | str | None:
    """The greedy answer's output token ids (its text where the server gives no ids)."""
    if answer["status"] != 200:
        return None
    try:
        data = json.loads(answer["text"])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    return data.get("output_ids") or data.get("meta_info", {}).get("output_ids") or data.get("text")


def after_checks(base_url: str, deadline_s: float, context: ssl.SSLContext | None = None) -> dict:
    """/health and one greedy /generate once the load is over."""
    time.sleep(1)  # let the scheduler finish what hung-up clients left
    health = call(base_url, "GET", "/health", None, deadline_s, context)
    greedy = call(base_url, "POST", "/generate", json.dumps(GREEDY), deadline_s, context)
    return {"health": health["status"], "greedy_status": greedy["status"], "greedy": greedy_tokens(greedy)}


def fuzz_server(base_url: str, specs: list[RequestSpec], deadline_s: float = DEADLINE_S,
                on_done: Callable[[], None] = lambda: None, context: ssl.SSLContext | None = None) -> dict:
    """One side's run: rows per request, seconds taken, and the after-checks."""
    model = served_model(base_url, deadline_s, context)
    started = time.monotonic()
    rows = run_specs(base_url, specs, model, deadline_s, on_done, context)
    return {"model": model, "rows": rows, "load_s": round(time.monotonic() - started, 2),
            "after": after_checks(base_url, deadline_s, context)}
