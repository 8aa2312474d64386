"""Run upstream's kit tests against one running server; print one JSON document on stdout.

    python -P kit_runner.py SPEC.json

Standard library only, and nothing of slim: it runs with the pristine upstream site first on
PYTHONPATH (the kits import sglang.test.* from there), then the harness's third-party site. The spec
(slim/fuzz/kits.py writes it) names the server (base_url, pid), the kits, the attributes their mixins
read, a per-test timeout and a budget. Each kit becomes `type(name, (Mixin, unittest.TestCase), attrs)`;
each test runs in a thread. The document: {"tests": {id: {"outcome", "seconds", "excerpt"}},
"stopped_after_timeout": id or null}. Outcomes: pass, fail, error, skip, not_run (the budget ran out).
A test past its timeout is an error and ends this run (its thread cannot be stopped; the harness
starts a fresh runner for the tests left, listing the done ones in the spec's "done")."""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import unittest
import urllib.request

EXCERPT = 300
REFUSALS: list[str] = []  # bodies with the front-door refusal mark, seen during the current test


class ServerProcess:
    """What the kits read from the fixture's Popen: .pid, and .poll() None while the server lives."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        except PermissionError:
            return None  # it exists, under another user
        return -1 if _zombie(self.pid) else None


def _zombie(pid: int) -> bool:
    """Dead but not yet reaped by the harness (its parent): kill(pid, 0) still succeeds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Outcome(unittest.TestResult):
    """The first failure, error or skip of one test, with its message."""

    def __init__(self):
        super().__init__()
        self.kind, self.message = "pass", ""

    def _first(self, kind: str, err) -> None:
        if self.kind in ("pass", "skip"):
            self.kind = kind
            self.message = "".join(traceback.format_exception_only(err[0], err[1])).strip()

    def addError(self, test, err):
        self._first("error", err)

    def addFailure(self, test, err):
        self._first("fail", err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._first("fail" if issubclass(err[0], test.failureException) else "error", err)

    def addSkip(self, test, reason):
        if self.kind == "pass":
            self.kind, self.message = "skip", str(reason)


def excerpt(message: str, mark: str) -> str:
    """The message's start; a front-door refusal seen on the wire goes first when the message lacks it."""
    if REFUSALS and mark not in message[:EXCERPT]:
        message = f"refused: {REFUSALS[0][:EXCERPT // 2]} | {message}"
    return message[:EXCERPT]


def watch_refusals(mark: str) -> None:
    """Note every 4xx/5xx body carrying the refusal mark that the kits' HTTP clients receive, so that a
    kit which drops the body (response.json()["text"]) still shows it was refused at slim's front door."""
    def note(text: str) -> None:
        if mark in text:
            REFUSALS.append(text)

    try:
        import requests
    except ImportError:
        requests = None
    if requests is not None:
        send = requests.Session.send

        def requests_send(self, request, **kwargs):
            response = send(self, request, **kwargs)
            if response.status_code >= 400:
                note(response.text)  # a streamed body is kept and still iterates
            return response

        requests.Session.send = requests_send
    try:
        import httpx  # the openai client's transport
    except ImportError:
        return
    httpx_send = httpx.Client.send

    def client_send(self, request, **kwargs):
        response = httpx_send(self, request, **kwargs)
        if response.status_code >= 400:
            note(response.read().decode(errors="replace"))
        return response

    httpx.Client.send = client_send


def tool_calls_mixin(module):
    """`tool_call_test_runner._TESTS` as a mixin: one test_<name> per (name, fn, flag)."""
    def method(fn):
        def test(self):
            import openai

            fn(openai.Client(api_key=self.api_key, base_url=self.base_url + "/v1"), self.model)
        return test

    return type("ToolCalls", (), {f"test_{name}": method(fn) for name, fn, _ in module._TESTS})


ADAPTERS = {"tool_calls": tool_calls_mixin}


def set_up(hooks: list[str], model_path: str):
    def setUpClass(cls):
        for hook in hooks:
            if hook == "tokenizer":
                utils = importlib.import_module("sglang.srt.utils.hf_transformers_utils")
                cls.tokenizer = utils.get_tokenizer(model_path)
            else:
                getattr(cls, hook)()
    return classmethod(setUpClass)


def test_class(kit: dict, spec: dict):
    module = importlib.import_module(f"sglang.test.{kit['module']}")
    mixin = ADAPTERS[kit["adapter"]](module) if kit.get("adapter") else getattr(module, kit["mixin"])
    attrs = {**spec["common"], **kit.get("attrs", {}), "process": ServerProcess(spec["pid"]),
             "setUpClass": set_up(kit.get("setup", []), spec["model_path"])}
    return type(f"Kit{kit['mixin']}", (mixin, unittest.TestCase), attrs)


def kit_name(kit: dict) -> str:
    return f"{kit['module'].removeprefix('kits.')}.{kit['mixin']}"


def in_thread(fn, timeout_s: float) -> tuple[bool, float]:
    """(finished, seconds): fn run in a daemon thread for at most timeout_s."""
    started = time.monotonic()
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive(), round(time.monotonic() - started, 2)


def row(outcome: str, seconds: float, message: str = "", mark: str = "") -> dict:
    return {"outcome": outcome, "seconds": seconds, "excerpt": excerpt(message, mark) if message else ""}


def post(base_url: str, path: str) -> None:
    """Best effort: a kit's `after` request (it restores what a failed test left, e.g. a paused server)."""
    try:
        request = urllib.request.Request(base_url + path, data=b"{}", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
    except OSError as error:
        print(f"after {path}: {error}", file=sys.stderr)


class Budget:
    def __init__(self, seconds: float | None):
        self.end = time.monotonic() + seconds if seconds is not None else None

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.monotonic()


def run_kit(kit: dict, spec: dict, budget: Budget, tests: dict) -> str | None:
    """Fill `tests` with this kit's outcomes; the id of a test that timed out (the run must stop), else None."""
    name, mark, done = kit_name(kit), spec["refusal_mark"], set(spec.get("done", []))
    try:
        cls = test_class(kit, spec)
    except Exception as error:  # noqa: BLE001 - a kit that does not import is that kit's error
        tests[name] = row("error", 0.0, f"import failed: {type(error).__name__}: {error}", mark)
        return None
    methods = [m for m in unittest.TestLoader().getTestCaseNames(cls) if not kit.get("only") or m in kit["only"]]
    todo = [m for m in methods if f"{name}.{m}" not in done]
    if kit.get("skip"):
        tests.update({f"{name}.{m}": row("skip", 0.0, kit["skip"]) for m in todo})
        return None
    failed = set_up_failure(cls, min(spec["timeout_s"], budget.left())) if todo and budget.left() > 0 else None
    if failed:
        tests.update({f"{name}.{m}": row("error", 0.0, f"setUpClass: {failed}", mark) for m in todo})
        return None
    try:
        for method in todo:
            test_id, left = f"{name}.{method}", budget.left()
            if left <= 0:
                tests[test_id] = row("not_run", 0.0, "not started: the kits budget ran out")
                continue
            REFUSALS.clear()
            result = Outcome()
            finished, seconds = in_thread(lambda m=method, r=result: cls(m).run(r), min(spec["timeout_s"], left))
            if finished:
                tests[test_id] = row(result.kind, seconds, result.message, mark)
            elif left < spec["timeout_s"]:
                tests[test_id] = row("not_run", seconds, f"cut off: the kits budget ran out after {seconds:g} s")
            else:
                tests[test_id] = row("error", seconds, f"timeout: still running after {seconds:g} s", mark)
                return test_id
    finally:
        for path in kit.get("after", []) if todo else []:
            post(spec["base_url"], path)
    return None


def set_up_failure(cls, timeout_s: float) -> str | None:
    """Why the kit's setUpClass (tokenizer, verifier) failed or hung; None when it worked."""
    failure = []

    def set_up():
        try:
            cls.setUpClass()
        except Exception as error:  # noqa: BLE001 - reported for each of the kit's tests
            failure.append(f"{type(error).__name__}: {error}")

    finished, seconds = in_thread(set_up, timeout_s)
    return (failure or [None])[0] if finished else f"still running after {seconds:g} s"


def run(spec: dict) -> dict:
    watch_refusals(spec["refusal_mark"])
    budget, tests = Budget(spec.get("budget_s")), {}
    for kit in spec["kits"]:
        stopped = run_kit(kit, spec, budget, tests)
        if stopped:
            return {"tests": tests, "stopped_after_timeout": stopped}
    return {"tests": tests, "stopped_after_timeout": None}


def main(argv: list[str]) -> None:
    with open(argv[1]) as f:
        spec = json.load(f)
    document_fd = os.dup(1)
    os.dup2(2, 1)  # what the kits print goes to stderr: stdout carries only the document
    document = json.dumps(run(spec), sort_keys=True)
    sys.stdout.flush()
    os.write(document_fd, (document + "\n").encode())
    os._exit(0)  # a timed-out test's thread may still run: do not wait for it


if __name__ == "__main__":
    main(sys.argv)
