"""Load and faults against a live sglang server; the same seeded schedule on upstream and on slim.

64 concurrent streams (native /generate and OpenAI chat), a seeded subset hung up mid-stream and
another closed before the first byte; alongside them malformed JSON, an unknown model name and
prompts longer than the context. Afterwards /health must answer 200 and a greedy request must
still be served. Every request has a deadline, so a hung one is recorded, never waited on.

    python3 benchmarks/load_faults.py run --url http://127.0.0.1:30000 --seed 7 --out up.json
    python3 benchmarks/load_faults.py compare up.json slim.json   # exit 1 on a regression
    python3 benchmarks/load_faults.py serve --scenario dsv3_fp8_tp1 --upstream UP --slim SLIM/python \
        --deps DEPS --out faults.json                              # start each, run, stop, compare
The comparison: no request hangs, no 5xx that upstream did not also answer for the same input,
/health 200 and the same greedy answer after the load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCHEMA = "slim-faults/1"
NEW_TOKENS = 64  # long enough to hang up in the middle of a stream


@dataclass(frozen=True)
class StreamJob:
    index: int
    kind: str  # complete | abort (hang up after `abort_after` events) | disconnect (before the first byte)
    abort_after: int = 0


def fault_schedule(seed: int, streams: int = 64, abort_share: float = 0.25,
                   disconnect_share: float = 0.125) -> list[StreamJob]:
    """Which streams are aborted mid-stream (and after how many events) and which disconnect early."""
    if streams < 1 or not 0 <= abort_share + disconnect_share <= 1 or min(abort_share, disconnect_share) < 0:
        raise ValueError(f"bad schedule: {streams} streams, shares {abort_share} + {disconnect_share}")
    rng = random.Random(seed)
    order = rng.sample(range(streams), streams)
    n_abort, n_disconnect = round(streams * abort_share), round(streams * disconnect_share)
    aborts = {i: rng.randint(1, NEW_TOKENS // 4) for i in sorted(order[:n_abort])}
    disconnects = set(order[n_abort:n_abort + n_disconnect])
    return [StreamJob(i, "abort", aborts[i]) if i in aborts else StreamJob(i, "disconnect" if i in disconnects
                                                                           else "complete")
            for i in range(streams)]


def stream_request(job: StreamJob, model: str) -> tuple[str, dict]:
    """Even streams go through the native API, odd ones through OpenAI chat."""
    text = f"Fault test stream {job.index}: count slowly from one to one hundred."
    if job.index % 2 == 0:
        return "/generate", {"text": text, "stream": True,
                             "sampling_params": {"temperature": 0, "max_new_tokens": NEW_TOKENS, "ignore_eos": True}}
    return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], "stream": True,
                                    "temperature": 0, "max_tokens": NEW_TOKENS}


def probes(model: str, context_len: int) -> dict[str, tuple[str, bytes]]:
    """Single bad requests: name -> (path, raw body)."""
    oversize = [100] * (context_len + 16)
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    return {
        "malformed_json_generate": ("/generate", b'{"text": "hi", "sampling_params": {'),
        "malformed_json_chat": ("/v1/chat/completions", b'{"model": "' + model.encode() + b'", "messages": [}'),
        "unknown_model_chat": ("/v1/chat/completions", json.dumps({**chat, "model": "no-such-model"}).encode()),
        "unknown_model_completions": ("/v1/completions", json.dumps(
            {"model": "no-such-model", "prompt": "hi", "max_tokens": 4}).encode()),
        "oversize_generate": ("/generate", json.dumps(
            {"input_ids": oversize, "sampling_params": {"max_new_tokens": 1}}).encode()),
        "oversize_completions": ("/v1/completions", json.dumps(
            {"model": model, "prompt": oversize, "max_tokens": 1}).encode()),
    }


GREEDY = ("/generate", json.dumps({"text": "The capital of France is",
                                   "sampling_params": {"temperature": 0, "max_new_tokens": 16}}).encode())


# ---------------------------------------------------------------------------------------------
# The live part: one HTTP connection per request, each with its own deadline.


def _connect(url: str, timeout_s: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_s)


def call(url: str, method: str, path: str, body: bytes | None, timeout_s: float) -> dict:
    """Status and body of one request; outcome 'hung' past the deadline."""
    conn = _connect(url, timeout_s)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = {"outcome": "answered", "status": response.status, "body": response.read().decode(errors="replace")}
    except TimeoutError:
        answer = {"outcome": "hung", "status": None}
    except (OSError, http.client.HTTPException) as error:
        answer = {"outcome": f"error: {type(error).__name__}", "status": None}
    finally:
        conn.close()
    return {**answer, "elapsed_s": round(time.monotonic() - started, 3)}


def run_stream(url: str, job: StreamJob, model: str, timeout_s: float) -> dict:
    """One stream per the schedule: read to [DONE], hang up after some events, or close before any byte."""
    path, body = stream_request(job, model)
    conn = _connect(url, timeout_s)
    started = time.monotonic()
    result = {"index": job.index, "kind": job.kind, "path": path, "status": None, "events": 0, "done": False}
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        outcome = "disconnected" if job.kind == "disconnect" else _read_stream(conn, job, result, started, timeout_s)
    except TimeoutError:
        outcome = "hung"
    except (OSError, http.client.HTTPException) as error:
        outcome = f"error: {type(error).__name__}"
    finally:
        conn.close()  # for an abort or a disconnect: the client going away
    return {**result, "outcome": outcome, "elapsed_s": round(time.monotonic() - started, 3)}


def _read_stream(conn, job: StreamJob, result: dict, started: float, timeout_s: float) -> str:
    """Read SSE lines into `result` until [DONE], the end, the abort point or the deadline."""
    response = conn.getresponse()
    result["status"] = response.status
    if response.status != 200:
        result["body"] = response.read().decode(errors="replace")[:300]
        return "rejected"
    while time.monotonic() - started < timeout_s:
        line = response.readline()  # each read also times out after timeout_s
        if not line:
            return "complete" if result["done"] else "truncated"
        if line.startswith(b"data:"):
            result["done"] |= line[5:].strip() == b"[DONE]"
            result["events"] += not result["done"]
        if job.kind == "abort" and result["events"] >= job.abort_after:
            return "aborted"
    return "hung"


def served_model(url: str, timeout_s: float) -> tuple[str, int]:
    """The served model's name and context length, from /v1/models."""
    answer = call(url, "GET", "/v1/models", None, timeout_s)
    if answer["status"] != 200:
        raise SystemExit(f"{url}/v1/models answered {answer['status'] or answer['outcome']}: is the server up?")
    card = json.loads(answer["body"])["data"][0]
    return card["id"], int(card["max_model_len"])


def run_faults(url: str, seed: int, streams: int, timeout_s: float, label: str) -> dict:
    """The whole schedule and every probe at once, then the after-checks; a versioned report."""
    model, context_len = served_model(url, timeout_s)
    schedule = fault_schedule(seed, streams)
    bad = probes(model, context_len)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(schedule) + len(bad)) as pool:
        stream_futures = [pool.submit(run_stream, url, job, model, timeout_s) for job in schedule]
        probe_futures = {name: pool.submit(call, url, "POST", path, body, timeout_s)
                         for name, (path, body) in bad.items()}
        stream_results = [f.result() for f in stream_futures]
        probe_results = {name: {**f.result(), "body": f.result().get("body", "")[:300]}
                         for name, f in probe_futures.items()}
    load_s = round(time.monotonic() - started, 2)
    time.sleep(2)  # let the scheduler notice the hung-up clients before asking after its health
    health = call(url, "GET", "/health", None, timeout_s)
    greedy = call(url, "POST", GREEDY[0], GREEDY[1], timeout_s)
    try:
        greedy_text = json.loads(greedy["body"]).get("text") if greedy["status"] == 200 else None
    except json.JSONDecodeError:
        greedy_text = None
    return {"schema": SCHEMA, "label": label, "url": url, "seed": seed, "streams": streams, "timeout_s": timeout_s,
            "model": model, "context_len": context_len, "host": platform.node(), "load_s": load_s,
            "schedule": [asdict(j) for j in schedule], "stream_results": stream_results, "probes": probe_results,
            "after": {"health_status": health["status"], "greedy_status": greedy["status"],
                      "greedy_text": greedy_text}}


# ---------------------------------------------------------------------------------------------
# Pure: what is wrong with one report, and with slim's against upstream's.


def own_problems(report: dict) -> list[str]:
    """What is wrong whatever upstream did: hung requests, an unhealthy server, no greedy answer."""
    problems = [f"stream {r['index']} ({r['kind']}, {r['path']}): no end within {report['timeout_s']} s"
                for r in report["stream_results"] if r["outcome"] == "hung"]
    problems += [f"{name}: no answer within {report['timeout_s']} s"
                 for name, r in report["probes"].items() if r["outcome"] == "hung"]
    if report["after"]["health_status"] != 200:
        problems.append(f"/health after the load: {report['after']['health_status']}")
    if report["after"]["greedy_status"] != 200:
        problems.append(f"greedy request after the load: {report['after']['greedy_status']}")
    return problems


def status_table(report: dict) -> dict[str, dict[str, int]]:
    """Fault class -> status (or outcome) -> count; the record of what each class got."""
    table: dict[str, dict[str, int]] = {}
    rows = [(f"stream_{r['kind']}", r["status"] or r["outcome"]) for r in report["stream_results"]]
    rows += [(name, r["status"] or r["outcome"]) for name, r in report["probes"].items()]
    for cls, status in rows:
        table.setdefault(cls, {}).setdefault(str(status), 0)
        table[cls][str(status)] += 1
    return table


def compare(upstream: dict, slim: dict) -> list[str]:
    """slim's problems, plus every 5xx that upstream did not also return for the same input."""
    for key in ("schema", "seed", "streams", "schedule"):
        if upstream.get(key) != slim.get(key):
            raise ValueError(f"reports differ in {key}: not the same fault run, not comparable")
    problems = own_problems(slim)
    up_streams = {r["index"]: r for r in upstream["stream_results"]}
    pairs = [(f"stream {r['index']} ({r['kind']}, {r['path']})", r["status"], up_streams[r["index"]]["status"])
             for r in slim["stream_results"]]
    pairs += [(name, r["status"], upstream["probes"].get(name, {}).get("status")) for name, r in slim["probes"].items()]
    problems += [f"{what}: {got} where upstream answered {want}" for what, got, want in pairs
                 if got is not None and got >= 500 and got != want]
    if upstream["after"]["greedy_text"] != slim["after"]["greedy_text"]:
        problems.append(f"greedy answer after the load: {slim['after']['greedy_text']!r:.80} "
                        f"!= upstream {upstream['after']['greedy_text']!r:.80}")
    return problems


# ---------------------------------------------------------------------------------------------
# Orchestration on a GPU host: start the scenario's server on each tree, run, stop, compare.


def serve_and_run(args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scenarios.model_cache import materialize
    from scenarios.server import free_port, started
    from scenarios.spec import load_scenario
    from slim.errors import SlimError
    from slim.upstream import cache_root

    scenario = load_scenario(args.scenario)
    model = materialize(scenario.model, cache_root() / "models")
    deadline = time.monotonic() + args.budget_s
    reports, failures = {}, {}
    for label, tree in (("upstream", args.upstream), ("slim", args.slim)):
        left = deadline - time.monotonic()
        if left < args.timeout_s + 60:
            print(f"SKIP {label}: {left:.0f} s of budget left", flush=True)
            break
        port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{tree}:{args.deps}", **scenario.server_env}
        try:
            with started(scenario.launch_command(sys.executable, str(model), port), env,
                         args.logs / f"faults-{label}.log", port, health_timeout_s=left - args.timeout_s) as server:
                reports[label] = run_faults(server.base_url, args.seed, args.streams, args.timeout_s, label)
                reports[label]["healthy_s"] = server.healthy_after_s
                reports[label]["server_alive"] = server.process.poll() is None
        except SlimError as error:  # never healthy: recorded, and the other tree still runs
            failures[label] = str(error)
            print(f"FAILED {label}: {error}", flush=True)
            continue
        print(label, json.dumps(status_table(reports[label])), flush=True)
    result = {"schema": SCHEMA, "benchmark": "load_faults", "scenario": scenario.name, "flags": scenario.server_args,
              "seed": args.seed, "reports": reports, "start_failures": failures,
              "status_tables": {label: status_table(r) for label, r in reports.items()},
              "own_problems": {label: own_problems(r) for label, r in reports.items()}}
    if len(reports) == 2:
        result["problems"] = compare(reports["upstream"], reports["slim"])
        result["passed"] = not result["problems"] and all(r["server_alive"] for r in reports.values())
    return result


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    # `timeout` sends SIGTERM: exit through `finally`, so the servers started here are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--streams", type=int, default=64)
        p.add_argument("--timeout-s", type=float, default=120, help="per request: longer counts as hung")
        p.add_argument("--out", type=Path, required=True)
    run = sub.choices["run"]
    run.add_argument("--url", required=True)
    run.add_argument("--label", default="server")
    serve = sub.choices["serve"]
    serve.add_argument("--scenario", default="dsv3_fp8_tp1")
    serve.add_argument("--upstream", type=Path, required=True)
    serve.add_argument("--slim", type=Path, required=True)
    serve.add_argument("--deps", type=Path, required=True)
    serve.add_argument("--logs", type=Path, default=Path("/tmp/slim-faults-logs"))
    serve.add_argument("--budget-s", type=float, default=540)
    cmp = sub.add_parser("compare")
    cmp.add_argument("upstream", type=Path)
    cmp.add_argument("slim", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        report = run_faults(args.url, args.seed, args.streams, args.timeout_s, args.label)
        _write(args.out, report)
        problems = own_problems(report)
    elif args.command == "serve":
        result = serve_and_run(args)
        _write(args.out, result)
        problems = result.get("problems", [f"{label} never healthy: {why}" for label, why in
                                           result["start_failures"].items()] or ["not both configurations ran"])
    else:
        try:
            problems = compare(*(json.loads(p.read_text()) for p in (args.upstream, args.slim)))
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit(f"error: {error}") from None
    for line in problems:
        print(f"PROBLEM {line}")
    print("faults: " + ("passed" if not problems else f"{len(problems)} problem(s)"))
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
