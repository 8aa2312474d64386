"""A [server] tls = true scenario end to end on CPU: a fake HTTPS `sglang.launch_server` started by
slim/serve.py (workload, companions' {base_url} and trust) and by the fuzzer, with the run's certificates."""

import json
import os
import sys

import slim.fuzz.drive as drive
from scenarios.hardware import Gpu
from scenarios.spec import load_scenario
from scenarios.tests.test_tls import HTTPS_SERVER
from slim.serve import serve_scenario
from slim.tests.test_fuzz import inventory

# A companion that trusts the server only through the environment the harness gives it.
HEALTH_CHECK = ("import sys, urllib.request; "
                "print(sys.argv[1].split(':')[0], urllib.request.urlopen(sys.argv[1] + '/health').status)")
SCENARIO = f'''description = "d"
model = "m"
[server]
args = ["--ssl-certfile", "{{tls_cert}}", "--ssl-keyfile", "{{tls_key}}",
        "--ssl-keyfile-password", "{{tls_key_password}}", "--ssl-ca-certs", "{{tls_ca}}"]
tls = true
[[requests]]
name = "generate"
path = "/generate"
body = {{ text = "paris" }}
[[requests]]
name = "stream"
path = "/generate"
body = {{ text = "rome", stream = true }}
[[companion]]
name = "health"
argv = ["-c", "{HEALTH_CHECK}", "{{base_url}}"]
when = "with_server"
'''


def fake_site(root, name: str = "python"):
    site = root / name
    (site / "sglang").mkdir(parents=True)
    (site / "sglang" / "__init__.py").write_text("")
    (site / "sglang" / "launch_server.py").write_text(HTTPS_SERVER)
    return site


def test_serve_runs_the_workload_and_companions_over_https(tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    (tmp_path / "secure.toml").write_text(SCENARIO)
    env = {**os.environ, "PYTHONPATH": str(fake_site(tmp_path))}
    log = tmp_path / "logs" / "secure.upstream.log"
    run = serve_scenario(load_scenario("secure"), env, log, tmp_path / "model")
    generate, stream, health = run.outputs
    assert (generate["status"], generate["output"]["text"]) == (200, "PARIS")
    assert (stream["status"], stream["output"]["text"]) == (200, "ROME")
    assert (health["status"], health["output"].splitlines()[-1]) == (0, "https 200"), health["output"]
    tls_dir = log.with_suffix(".tls")
    assert run.command[run.command.index("--ssl-certfile") + 1] == str(tls_dir / "cert.pem")
    assert run.command[run.command.index("--ssl-ca-certs") + 1] == str(tls_dir / "ca.pem")
    assert run.command[0] == sys.executable


def test_the_fuzzer_serves_the_tls_scenario_over_https(tmp_path, monkeypatch):
    monkeypatch.setattr(drive, "detect_gpus", lambda: [Gpu("Fake GPU", 9.0, "1")])
    monkeypatch.setattr(drive, "require", lambda scenario, gpus: None)
    monkeypatch.setattr(drive, "materialize", lambda model, root: tmp_path / "model")
    db = tmp_path / "db"
    (db / "surface").mkdir(parents=True)
    (db / "surface" / "inventory.json").write_text(json.dumps(inventory()))
    upstream, tree = fake_site(tmp_path / "up"), tmp_path / "tree"
    fake_site(tree)
    _, report = drive.fuzz_verify("dsv3_fp8_tp1_tls", 10, 2, upstream, tree, db, tmp_path / "logs", deadline_s=10)
    assert report["passed"], report["problems"]
    for side in ("upstream", "slim"):
        assert report["sides"][side]["after"]["health"] == 200
        assert (tmp_path / "logs" / "fuzz" / f"dsv3_fp8_tp1_tls.{side}.tls" / "ca.pem").is_file()


def test_the_tls_scenario_is_the_base_scenario_plus_the_ssl_flags():
    base, tls = load_scenario("dsv3_fp8_tp1"), load_scenario("dsv3_fp8_tp1_tls")
    ssl_flags = ["--ssl-certfile", "{tls_cert}", "--ssl-keyfile", "{tls_key}", "--ssl-keyfile-password",
                 "{tls_key_password}", "--ssl-ca-certs", "{tls_ca}", "--enable-ssl-refresh"]
    assert tls.server_args == base.server_args + ssl_flags
    assert (tls.model, tls.requests, tls.server_env, tls.hardware) == (base.model, base.requests, base.server_env,
                                                                       base.hardware)
