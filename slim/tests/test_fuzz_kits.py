"""`slim verify --kits`: the kit runner in its subprocess against a stdlib HTTP server, the comparison,
the selection against the pinned upstream tree, and the kits phase of a fuzz run end to end."""

import ast
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import slim.fuzz.drive as drive
import slim.fuzz.kits as kits
from slim import upstream as up
from slim.errors import SlimError
from slim.fuzz.kit_runner import ServerProcess
from slim.fuzz.kit_selection import LEFT_OUT, SELECTED, Kit, flag_value
from slim.fuzz.kits_compare import compare_kits, verdict
from slim.surface.policy import REFUSAL_MARK
from slim.tests.test_fuzz_drive import fake_host, fake_site  # noqa: F401 - fake_host is a fixture

REFUSAL = f"the frobnicate field {REFUSAL_MARK} (not a DeepSeek feature)"

DEMO_KIT = '''
import time
import unittest

import requests


class DemoMixin:
    greeting = "unset"

    def test_error(self):
        raise RuntimeError("boom")

    def test_fail(self):
        self.assertEqual(self.greeting, "bye")

    def test_hang(self):
        time.sleep(60)

    def test_pass(self):
        self.assertEqual(requests.get(self.base_url + "/health").status_code, 200)
        self.assertIsNone(self.process.poll())
        self.assertEqual(self.greeting, "hello")

    def test_refused(self):  # drops the body, as many kits do: the runner must still see the refusal
        self.assertEqual(requests.get(self.base_url + "/refused").status_code, 200)

    def test_skip(self):
        raise unittest.SkipTest("needs a real model")


class SlowMixin:
    def test_a(self):
        time.sleep(3)

    def test_b(self):
        pass


class SetupMixin:
    prepared = False

    @classmethod
    def prepare(cls):
        cls.prepared = True

    @classmethod
    def explode(cls):
        raise ValueError("no tokenizer here")

    def test_ready(self):
        self.assertEqual((self.tokenizer, self.prepared), ("tokenizer of " + self.model, True))
'''

HF_UTILS = '''
def get_tokenizer(path):
    return "tokenizer of " + path
'''

# The one entry point of `requests` the runner hooks (Session.send), over urllib: the venv has no requests.
STUB_REQUESTS = '''
import urllib.error
import urllib.request


class Response:
    def __init__(self, status_code, text):
        self.status_code, self.text = status_code, text


class Session:
    def send(self, request, **kwargs):
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return Response(answer.status, answer.read().decode())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read().decode())


def get(url, **kwargs):
    return Session().send(urllib.request.Request(url))
'''

DEMO = Kit("kits.demo_kit", "DemoMixin", "fixture", after=("/continue_generation",))


def kit_site(root: Path) -> Path:
    """An 'upstream site' holding sglang/test/kits/demo_kit.py (and a stub requests)."""
    kits_dir = root / "sglang" / "test" / "kits"
    kits_dir.mkdir(parents=True)
    for folder in (root / "sglang", root / "sglang" / "test", kits_dir):
        (folder / "__init__.py").touch()
    (kits_dir / "demo_kit.py").write_text(DEMO_KIT)
    utils = root / "sglang" / "srt" / "utils"
    utils.mkdir(parents=True)
    (utils / "hf_transformers_utils.py").write_text(HF_UTILS)
    (root / "requests.py").write_text(STUB_REQUESTS)
    return root


@pytest.fixture
def http_server():
    """A stdlib server: /health 200, /refused 400 with the refusal; it records the POSTed paths."""
    posted = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, text):
            self.send_response(status)
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        def do_GET(self):
            self.answer(400, json.dumps({"message": REFUSAL})) if self.path == "/refused" else self.answer(200, "ok")

        def do_POST(self):
            posted.append(self.path)
            self.answer(200, "{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", posted
    server.shutdown()


def run_demo(tmp_path, base_url, selected, timeout_s=2.0, budget_s=None, flags=()):
    site = kit_site(tmp_path / "site")
    spec = kits.runner_spec(base_url, os.getpid(), tmp_path / "model", "tiny", list(flags), timeout_s, selected)
    spec["common"]["greeting"] = "hello"
    return kits.run_kits(spec, kits.runner_env(site, None), tmp_path / "kits.log", budget_s)


def test_the_runner_reports_each_outcome_and_a_hang_as_a_timeout(tmp_path, http_server):
    base_url, posted = http_server
    started = time.monotonic()
    result = run_demo(tmp_path, base_url, (DEMO,))
    outcomes = {test_id.rsplit(".", 1)[1]: row["outcome"] for test_id, row in result["tests"].items()}
    assert outcomes == {"test_error": "error", "test_fail": "fail", "test_hang": "error", "test_pass": "pass",
                        "test_refused": "fail", "test_skip": "skip"}
    tests = result["tests"]
    assert tests["demo_kit.DemoMixin.test_hang"]["excerpt"].startswith("timeout: still running after 2")
    assert tests["demo_kit.DemoMixin.test_error"]["excerpt"] == "RuntimeError: boom"
    assert "'hello' != 'bye'" in tests["demo_kit.DemoMixin.test_fail"]["excerpt"]
    assert tests["demo_kit.DemoMixin.test_skip"]["excerpt"] == "needs a real model"
    refused = tests["demo_kit.DemoMixin.test_refused"]["excerpt"]
    assert REFUSAL_MARK in refused and refused.endswith("400 != 200")
    # the hang ended its runner; a second one ran the tests after it, and each sent the kit's `after`
    assert result["launches"] == 2 and not result["runner_errors"]
    assert posted == ["/continue_generation", "/continue_generation"]
    assert time.monotonic() - started < 30


def test_the_budget_leaves_tests_not_run(tmp_path, http_server):
    slow = Kit("kits.demo_kit", "SlowMixin", "fixture")
    result = run_demo(tmp_path, http_server[0], (slow, DEMO), timeout_s=10, budget_s=1.0)
    tests = result["tests"]
    assert tests["demo_kit.SlowMixin.test_a"]["outcome"] == "not_run"  # started, cut off by the budget
    assert tests["demo_kit.SlowMixin.test_a"]["excerpt"].startswith("cut off")
    not_started = [t for t, row in tests.items() if row["excerpt"] == "not started: the kits budget ran out"]
    assert "demo_kit.SlowMixin.test_b" in not_started and "demo_kit.DemoMixin.test_pass" in not_started
    assert {row["outcome"] for row in tests.values()} == {"not_run"}


def test_a_kit_without_its_flag_is_skipped_and_one_that_does_not_import_is_an_error(tmp_path, http_server):
    gated = Kit("kits.demo_kit", "DemoMixin", "fixture", only=("test_pass",), needs_flag="--demo")
    missing = Kit("kits.no_such_kit", "Mixin", "fixture")
    result = run_demo(tmp_path, http_server[0], (gated, missing))
    assert result["tests"]["demo_kit.DemoMixin.test_pass"] == {
        "outcome": "skip", "seconds": 0.0, "excerpt": "the scenario does not serve --demo"}
    assert result["tests"]["no_such_kit.Mixin"]["outcome"] == "error"
    result = run_demo(tmp_path / "again", http_server[0], (gated,), flags=("--demo",))
    assert result["tests"] == {"demo_kit.DemoMixin.test_pass": {"outcome": "pass", "seconds": pytest.approx(0, abs=5),
                                                               "excerpt": ""}}


def test_set_up_class_loads_the_tokenizer_and_calls_the_kits_hook_and_its_failure_errors_each_test(
        tmp_path, http_server):
    ready = Kit("kits.demo_kit", "SetupMixin", "fixture", setup=("tokenizer", "prepare"))
    broken = Kit("kits.demo_kit", "SetupMixin", "fixture", setup=("explode",))
    result = run_demo(tmp_path, http_server[0], (ready,))
    assert result["tests"]["demo_kit.SetupMixin.test_ready"]["outcome"] == "pass"
    result = run_demo(tmp_path / "again", http_server[0], (broken,))
    assert result["tests"]["demo_kit.SetupMixin.test_ready"] == {
        "outcome": "error", "seconds": 0.0, "excerpt": "setUpClass: ValueError: no tokenizer here"}


def test_the_process_proxy_sees_a_dead_and_an_unreaped_server():
    assert ServerProcess(os.getpid()).poll() is None
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while ServerProcess(child.pid).poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ServerProcess(child.pid).poll() == -1  # a zombie: kill(pid, 0) still succeeds
    child.wait()
    assert ServerProcess(child.pid).poll() == -1


def test_flag_value_and_the_side_budget():
    args = ["--tp", "1", "--reasoning-parser", "deepseek-r1", "--enable-metrics", "--api-key=sk"]
    assert flag_value(args, "--reasoning-parser") == "deepseek-r1"
    assert flag_value(args, "--enable-metrics") == "" and flag_value(args, "--api-key") == "sk"
    assert flag_value(args, "--speculative-algorithm") is None
    plan = kits.KitsPlan(Path("/up"), budget_s=100)
    assert plan.side_budget(None) == 100
    assert plan.side_budget(time.monotonic() + 10) == pytest.approx(10, abs=1)
    assert plan.side_budget(time.monotonic() - 5) == 0
    assert kits.KitsPlan(Path("/up")).side_budget(None) is None


def test_the_runner_sees_the_upstream_site_first_and_trusts_an_https_servers_ca(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/deps/site:/tools")
    env = kits.runner_env(Path("/up/site"), Path("/tls/ca.pem"))
    assert env["PYTHONPATH"] == "/up/site:/deps/site:/tools"
    assert env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == "/tls/ca.pem"
    spec = kits.runner_spec("https://h:1", 7, Path("/m"), "tiny", ["--api-key", "sk-x", "--reasoning-parser", "r1"], 5)
    assert spec["common"]["api_key"] == "sk-x" and spec["common"]["model"] == "/m"
    reasoning = next(k for k in spec["kits"] if k["mixin"] == "ReasoningTokenUsageMixin")
    assert reasoning["attrs"] == {"reasoning_parser_name": "r1"} and "skip" not in reasoning
    assert next(k for k in spec["kits"] if k["mixin"] == "SpecGrammarKit")["skip"].endswith("--speculative-algorithm")


def row(outcome, excerpt=""):
    return {"outcome": outcome, "seconds": 1.0, "excerpt": excerpt}


@pytest.mark.parametrize(("up", "slim", "expected"), [
    ("pass", "pass", "passed"),
    ("pass", "fail", "problem"),
    ("pass", "error", "problem"),
    ("pass", "skip", "problem"),
    ("pass", "not_run", "not_run"),
    ("fail", "pass", "upstream_fails"),
    ("error", "fail", "upstream_fails"),
    ("not_run", "pass", "upstream_not_run"),
    ("skip", "skip", "skipped"),
])
def test_verdicts(up, slim, expected):
    assert verdict(row(up), row(slim)) == expected


def test_a_refusal_at_slims_front_door_is_a_note_and_a_plain_failure_a_problem():
    upstream = {"tests": {"k.M.test_a": row("pass"), "k.M.test_b": row("pass"), "k.M.test_c": row("fail", "no")},
                "server_alive_after": True}
    slim = {"tests": {"k.M.test_a": row("fail", f"refused: {REFUSAL} | 400 != 200"),
                      "k.M.test_b": row("error", "KeyError: 'text'"), "k.M.test_c": row("fail", "no")},
            "server_alive_after": True}
    section = compare_kits(upstream, slim)
    assert {t: v["verdict"] for t, v in section["tests"].items()} == {
        "k.M.test_a": "refused", "k.M.test_b": "problem", "k.M.test_c": "upstream_fails"}
    assert section["problems"] == ["kit k.M.test_b: slim does not pass what upstream passes "
                                   "(upstream pass, slim error): KeyError: 'text'"]
    assert any("refused at slim's front door" in n for n in section["notes"])
    assert any("k.M.test_c: upstream does not pass it" in n for n in section["notes"])
    assert section["sides"]["slim"]["outcomes"] == {"error": 1, "fail": 2}


def test_a_test_slim_has_no_outcome_for_and_a_dead_slim_server_are_problems():
    upstream = {"tests": {"k.M.test_a": row("pass")}, "server_alive_after": True}
    section = compare_kits(upstream, {"tests": {}, "server_alive_after": False, "runner_errors": ["killed"]})
    assert section["tests"]["k.M.test_a"]["verdict"] == "problem"
    assert any("died" in p for p in section["problems"]) and "kits on slim: killed" in section["notes"]
    assert compare_kits(None, None)["tests"] == {}


def test_every_kit_of_the_pinned_tree_is_selected_or_left_out_and_the_selection_exists():
    tree = up.default_tree(up.load_pin())
    if not tree.is_dir():
        pytest.skip("upstream sglang not fetched")
    test_dir = up.resolve_tree(None) / "sglang" / "test"
    for kit in SELECTED:
        source = ast.parse((test_dir / (kit.module.replace(".", "/") + ".py")).read_text())
        if kit.adapter:  # tool_call_test_runner: the names in _TESTS
            table = next(n.value for n in source.body if isinstance(n, ast.Assign) and n.targets[0].id == "_TESTS")
            methods = {f"test_{ast.literal_eval(entry.elts[0])}" for entry in table.elts}
        else:
            classes = {n.name: n for n in source.body if isinstance(n, ast.ClassDef)}
            assert kit.mixin in classes, kit.name
            methods = {f.name for f in classes[kit.mixin].body if isinstance(f, ast.FunctionDef)}
        assert set(kit.only) <= methods, kit.name
        for hook in kit.setup:
            assert hook == "tokenizer" or hook in methods, (kit.name, hook)
    chosen = {kit.module for kit in SELECTED} | {name.rsplit(".", 1)[0] if name.endswith("Mixin") or "Kit" in
                                                 name.rsplit(".", 1)[1] else name for name in LEFT_OUT}
    on_disk = {f"kits.{p.stem}" for p in (test_dir / "kits").iterdir() if p.suffix == ".py" or
               (p.is_dir() and p.name != "__pycache__")} - {"kits.__init__"}
    assert on_disk <= chosen, sorted(on_disk - chosen)
    for name in LEFT_OUT:  # a left-out mixin names a class of its module
        module, _, mixin = name.rpartition(".")
        if mixin.endswith(("Mixin", "Kit")):
            assert f"class {mixin}" in (test_dir / (module.replace(".", "/") + ".py")).read_text(), name


def test_fuzz_zero_with_kits_runs_only_the_kits_and_a_slim_failure_is_a_diagnosed_problem(fake_host,  # noqa: F811
                                                                                         monkeypatch):
    tmp, db = fake_host
    site = kit_site(fake_site(tmp / "up", broken=None))
    (site / "sglang" / "test" / "kits" / "post_kit.py").write_text(POST_KIT)
    fake_site(tmp / "tree" / "python", broken='"text"')
    monkeypatch.setattr(kits, "SELECTED", (Kit("kits.post_kit", "PostMixin", "fixture"),))
    path, report = drive.fuzz_verify("dsv3_fp8_tp1", 0, 0, site, tmp / "tree", db, tmp / "logs", deadline_s=10,
                                     kits=kits.KitsPlan(site, timeout_s=10))
    assert path == db / "fuzz" / "dsv3_fp8_tp1-kits-Fake_GPU.json" and report["requests"] == []
    tests = report["kits"]["tests"]
    assert tests["post_kit.PostMixin.test_models"]["verdict"] == "passed"
    assert tests["post_kit.PostMixin.test_generate"]["verdict"] == "problem"
    assert not report["passed"] and any("test_generate" in p for p in report["problems"])
    assert report["diagnosis"] and "penaltylib" in report["diagnosis"][0]
    assert report["kits"]["sides"]["upstream"]["outcomes"] == {"pass": 2}
    assert (tmp / "logs" / "fuzz" / "dsv3_fp8_tp1.kits-slim.log").is_file()
    assert "kits" not in report["sides"]["slim"]



def test_kits_judge_nothing_when_upstream_passes_none_of_them():
    """Seen on GPU (2026-12-07): the runtime's upstream site lacked sglang/test, every kit import failed
    on both sides, and the run 'answered like upstream'. A kits run upstream passes nothing of is a fault."""
    failed = {"tests": {"k.M.test_a": row("error", "import failed: ModuleNotFoundError"),
                        "k.M.test_b": row("skip", "no flag")}, "server_alive_after": True}
    section = compare_kits(failed, failed)
    assert any("no test passed" in p for p in section["problems"])
    passed_one = {"tests": {**failed["tests"], "k.M.test_c": row("pass")}, "server_alive_after": True}
    assert compare_kits(passed_one, passed_one)["problems"] == []


def test_kits_on_an_upstream_site_without_the_test_kits_stop_before_any_server(fake_host):  # noqa: F811
    tmp, db = fake_host
    site = fake_site(tmp / "up", broken=None)  # sglang without sglang/test, as the runtime tarball has it
    fake_site(tmp / "tree" / "python", broken=None)
    with pytest.raises(SlimError, match="has no sglang/test/kits"):
        drive.fuzz_verify("dsv3_fp8_tp1", 0, 0, site, tmp / "tree", db, tmp / "logs", deadline_s=10,
                          kits=kits.KitsPlan(site, timeout_s=10))
    assert not (tmp / "logs").exists() and not (db / "fuzz").exists()

POST_KIT = '''
import json
import urllib.request


class PostMixin:
    def test_models(self):
        with urllib.request.urlopen(self.base_url + "/v1/models") as answer:
            self.assertEqual(json.loads(answer.read())["data"][0]["id"], self.served_model_name)

    def test_generate(self):
        request = urllib.request.Request(self.base_url + "/generate", data=json.dumps({"text": "hi"}).encode())
        with urllib.request.urlopen(request) as answer:
            self.assertEqual(answer.status, 200)
'''
