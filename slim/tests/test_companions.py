"""Companion entry points: [[companion]] in a scenario file, the runner, and verify's exit-code check."""

import os
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenarios.spec import Companion, load_scenario
from slim.cli import app
from slim.companions import TIMED_OUT, companion_log, companion_mismatch, run_companion, split_companions
from slim.errors import SlimError
from slim.serve import serve_scenario
from slim.upstream import default_tree, load_pin
from slim.verify import outputs_mismatch

HEAD = 'description = "d"\nmodel = "m"\n[server]\nargs = []\n'
BENCH = '[[companion]]\nargv = ["-m", "sglang.bench_serving", "--base-url", "{base_url}", "--x", \'{"a": 1}\']\n'


def scenario_file(tmp_path, monkeypatch, name: str, text: str) -> None:
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    (tmp_path / f"{name}.toml").write_text(text)


def test_companions_parse_and_fill_only_their_placeholders(tmp_path, monkeypatch):
    scenario_file(tmp_path, monkeypatch, "s", HEAD + BENCH + 'when = "with_server"\ntimeout_s = 5\nenv = { A = 1 }\n'
                  + '[[companion]]\nname = "sglang"\nargv = ["-c", "pass", "{model_path}:{port}"]\nwhen = "alone"\n')
    bench, script = load_scenario("s").companions
    assert (bench.label, bench.module, bench.timeout_s, bench.env) == (
        "companion:sglang.bench_serving", "sglang.bench_serving", 5, {"A": "1"})
    values = {"base_url": "http://h:1", "model_path": "/m", "port": "7"}
    assert bench.command("py", values) == ["py", "-m", "sglang.bench_serving", "--base-url", "http://h:1",
                                           "--x", '{"a": 1}']  # JSON braces are no placeholder
    assert script.command("py", values)[-1] == "/m:7" and script.label == "companion:sglang"


@pytest.mark.parametrize(("body", "message"), [
    ('when = "later"\n', r"when = 'later', not one of with_server, alone"),
    ('when = "alone"\nretries = 2\n', r"\[\[companion\]\] 1: unknown key\(s\) retries \(known: argv"),
    ('when = "alone"\n[[companion]]\nargv = ["-m", "sglang.bench_serving"]\nwhen = "alone"\n',
     "names repeat: companion:sglang.bench_serving"),
])
def test_a_bad_companion_is_one_line_naming_the_file(tmp_path, monkeypatch, body, message):
    scenario_file(tmp_path, monkeypatch, "bad", HEAD + BENCH + body)
    with pytest.raises(SlimError, match=f"bad.toml is malformed: .*{message}") as error:
        load_scenario("bad")
    assert "\n" not in str(error.value)


def test_a_companion_needs_a_module_or_a_name_and_known_placeholders():
    with pytest.raises(ValueError, match="runs no -m module: give it a name"):
        Companion(("-c", "pass"), "alone")
    with pytest.raises(ValueError, match="unknown placeholder.*host"):
        Companion(("-m", "x", "{host}"), "alone")


def test_a_scenario_without_a_server_runs_only_alone_companions(tmp_path, monkeypatch):
    alone = '[[companion]]\nargv = ["-m", "sglang.check_env"]\nwhen = "alone"\n'
    scenario_file(tmp_path, monkeypatch, "bare", 'description = "d"\nmodel = "m"\n' + alone)
    assert not load_scenario("bare").server_start and load_scenario("bare").server_args == []
    scenario_file(tmp_path, monkeypatch, "off", HEAD + "start = false\n" + alone)
    assert not load_scenario("off").server_start
    scenario_file(tmp_path, monkeypatch, "wants", 'description = "d"\nmodel = "m"\n' + BENCH + 'when = "with_server"\n')
    with pytest.raises(SlimError, match="without a server .* only companions with when = alone"):
        load_scenario("wants")


def fake(code: str, timeout_s: float = 30, **env) -> Companion:
    return Companion(("-c", code), "alone", timeout_s, env, name="fake")


def test_the_runner_captures_exit_code_tail_and_environment(tmp_path):
    code = "import os, sys\nfor n in range(100): print('line', n)\nprint(os.environ['GREETING']); sys.exit(3)"
    entry = run_companion(fake(code, GREETING="hello"), sys.executable, {}, dict(os.environ), tmp_path,
                          tmp_path / "c.log")
    assert (entry["name"], entry["path"], entry["status"], entry["timed_out"]) == ("companion:fake", "companion:fake",
                                                                                   3, False)
    assert entry["output"].endswith("line 99\nhello") and "line 50" not in entry["output"]  # the tail only
    assert "line 0\n" in (tmp_path / "c.log").read_text()  # the whole output stays in its log


def test_a_companion_past_its_timeout_is_stopped_with_its_children(tmp_path):
    marker = tmp_path / "child.pid"
    code = ("import subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(marker)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    started = time.monotonic()
    entry = run_companion(fake(code, timeout_s=2), sys.executable, {}, dict(os.environ), tmp_path, tmp_path / "t.log")
    assert (entry["status"], entry["timed_out"]) == (TIMED_OUT, True) and time.monotonic() - started < 30
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


def test_a_serverless_scenario_runs_its_companions_in_order(tmp_path, monkeypatch):
    text = ('description = "d"\nmodel = "m"\n'
            '[[companion]]\nname = "first"\nargv = ["-c", "print(\'{model_path} {port}\')"]\nwhen = "alone"\n'
            '[[companion]]\nname = "second"\nargv = ["-c", "raise SystemExit(2)"]\nwhen = "alone"\n')
    scenario_file(tmp_path, monkeypatch, "solo", text)
    run = serve_scenario(load_scenario("solo"), dict(os.environ), tmp_path / "logs" / "solo.upstream.log", tmp_path)
    first, second = run.outputs
    assert run.command == [] and run.healthy_after_s is None
    assert first["status"] == 0 and first["output"].splitlines()[-1].startswith(f"{tmp_path} ")
    assert second["status"] == 2
    assert companion_log(tmp_path / "solo.slim.log", load_scenario("solo").companions[0]).name == (
        "solo.slim.companion.first.log")


def entry(name: str, status: int, timed_out: bool = False) -> dict:
    return {"name": f"companion:{name}", "path": f"companion:{name}", "status": status, "timed_out": timed_out,
            "compare": False, "output": "Throughput: 1.0\nTraceback...\nImportError: gone", "elapsed_s": 9.0}


def test_verify_wants_exit_0_where_upstream_exited_0_and_ignores_the_numbers():
    request = {"name": "g", "path": "/generate", "status": 200, "compare": True, "output": {"output_ids": [1]}}
    reference = [request, entry("a", 0), entry("b", TIMED_OUT, True)]
    assert split_companions(reference) == ([request], reference[1:])
    assert outputs_mismatch(reference, [request, entry("a", 0), entry("b", 1)]) is None  # b never passed upstream
    assert outputs_mismatch(reference, [request, entry("a", 1)]) == (
        "companion:a: exit 1 != reference exit 0; last line: ImportError: gone")
    assert companion_mismatch(reference[1:], [entry("a", TIMED_OUT, True)]).startswith(
        "companion:a: timed out after 9 s")
    assert companion_mismatch(reference[1:], []) == "companion:a: not run"


def test_the_committed_companion_scenario_runs_upstream_entry_points():
    """Every -m module of the companion scenarios is an upstream module that runs as a script."""
    tree = default_tree(load_pin())
    if not tree.is_dir():
        pytest.skip("upstream not fetched: run `slim fetch`")
    modules = [c.module for name in ("dsv3_fp8_tp1_companions", "dsv3_fp8_tp1_companions_engines")
               for c in load_scenario(name).companions if c.argv[0] == "-m"]
    assert {"sglang.bench_serving", "sglang.compile_deep_gemm", "sglang.check_env"} <= set(modules)
    for module in modules:
        source = Path(tree, *module.split(".")).with_suffix(".py").read_text()
        assert 'if __name__ == "__main__"' in source, module


def test_the_dry_run_plan_lists_the_companions_after_the_launch_command():
    result = CliRunner().invoke(app, ["scenarios", "--plan", "dsv3_fp8_tp1_companions"], env={"COLUMNS": "400"})
    lines = result.output.splitlines()
    assert result.exit_code == 0 and "sglang.launch_server" in lines[0]
    assert any(line.startswith("[with_server]") and "--base-url http://127.0.0.1:30000" in line for line in lines)
    assert any(line.startswith("[alone]") and "sglang.check_env" in line for line in lines)
    engines = CliRunner().invoke(app, ["scenarios", "--plan", "dsv3_fp8_tp1_companions_engines"],
                                 env={"COLUMNS": "400"}).output.splitlines()
    assert any(line.startswith("[alone]") and "sglang.compile_deep_gemm" in line and "<free-port>" in line
               for line in engines)
