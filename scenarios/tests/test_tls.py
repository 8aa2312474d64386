"""scenarios/tls.py: fresh certificates that an ssl server loads with the key's password, and every
client code path (workload, fuzz, health wait) over HTTPS: trusted with the context, refused without."""

import ssl
import sys
import threading
import time
import urllib.error
from http.server import ThreadingHTTPServer

import pytest

from scenarios.server import Server, free_port
from scenarios.spec import Request, load_scenario
from scenarios.tests.test_workload import FakeSglang
from scenarios.tls import KEY_PASSWORD, PLACEHOLDERS, TlsFiles, client_context, client_env, write_tls_files
from scenarios.workload import run_workload, send
from slim.errors import SlimError
from slim.fuzz.run import call

# What `sglang.launch_server --ssl-certfile C --ssl-keyfile K --ssl-keyfile-password P --port N` does
# for a client, as uvicorn does it: the encrypted key loaded with the password, no client certificate asked.
HTTPS_SERVER = '''
import json, ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def flag(name):
    return sys.argv[sys.argv.index(name) + 1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer(200, {"data": [{"id": "tiny"}]} if self.path == "/v1/models" else {"path": self.path})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        item = {"text": str(body.get("text", "")).upper(), "output_ids": [1, 2], "meta_info": {}}
        if not body.get("stream"):
            return self.answer(200, item)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f"data: {json.dumps(item)}\\n\\ndata: [DONE]\\n\\n".encode())


server = ThreadingHTTPServer(("127.0.0.1", int(flag("--port"))), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(flag("--ssl-certfile"), flag("--ssl-keyfile"), flag("--ssl-keyfile-password"))
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
'''


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TlsFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(tls):
    """The workload tests' fake sglang, its socket wrapped in TLS with the encrypted key."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSglang)
    server.logprob_shift = 0.0
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key, KEY_PASSWORD)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_files_are_a_ca_a_leaf_and_an_encrypted_key_that_loads_only_with_its_password(tmp_path, tls):
    assert sorted(p.name for p in tls.cert.parent.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert tls.key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert, tls.key, KEY_PASSWORD)
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert, tls.key, "not-the-password")
    assert set(tls.placeholder_values()) == set(PLACEHOLDERS)
    assert client_env(tls) == {"SSL_CERT_FILE": str(tls.ca), "REQUESTS_CA_BUNDLE": str(tls.ca)}
    again = write_tls_files(tmp_path)  # every run its own CA
    assert again.ca.read_text() != tls.ca.read_text()


def test_the_workload_over_https_passes_with_the_context_and_fails_without(https_server, tls, tmp_path):
    requests = [Request("g", "/generate", body={"text": "hi"}),
                Request("s", "/generate", body={"text": "x", "stream": True}),
                Request("info", "/get_model_info", method="GET", compare=False)]
    outputs = run_workload(https_server, requests, client_context(tls.ca))
    assert [o["status"] for o in outputs] == [200, 200, 200] and outputs[0]["output"]["text"] == "HI"
    with pytest.raises(urllib.error.URLError) as refused:
        send(https_server, requests[0])  # the system's CAs do not know this one
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    stranger = write_tls_files(tmp_path / "other")
    with pytest.raises(urllib.error.URLError):
        send(https_server, requests[0], context=client_context(stranger.ca))


def test_the_fuzzer_over_https_answers_with_the_context_and_gets_no_answer_without(https_server, tls):
    assert call(https_server, "POST", "/generate", '{"text": "a"}', 10, client_context(tls.ca))["class"] == "2xx"
    assert call(https_server, "POST", "/generate", '{"text": "a"}', 10)["class"] == "no_answer"


def https_process(tmp_path, tls: TlsFiles) -> Server:
    port = free_port()
    command = [sys.executable, "-c", HTTPS_SERVER, "--port", str(port), "--ssl-certfile", str(tls.cert),
               "--ssl-keyfile", str(tls.key), "--ssl-keyfile-password", KEY_PASSWORD]
    return Server(command, {}, tmp_path / "server.log", port, tls=tls)


def test_the_health_wait_reaches_an_https_server_and_stops_at_an_untrusted_certificate(tmp_path, tls):
    server = https_process(tmp_path, tls)
    assert server.base_url.startswith("https://127.0.0.1:")
    server.start(tmp_path)
    try:
        assert server.wait_healthy(30) < 30
    finally:
        server.stop()
    stranger = write_tls_files(tmp_path / "other")
    server = https_process(tmp_path, tls)
    server.start(tmp_path)
    server.tls = TlsFiles(tls.cert, tls.key, stranger.ca)  # the clients trust another CA
    started = time.monotonic()
    try:
        with pytest.raises(SlimError, match="certificate is not trusted"):
            server.wait_healthy(60)
    finally:
        server.stop()
    assert time.monotonic() - started < 30  # not retried until the timeout


def test_the_tls_scenario_names_this_runs_files_in_its_launch_line(tls):
    scenario = load_scenario("dsv3_fp8_tp1_tls")
    assert scenario.tls and scenario.server_start
    command = scenario.launch_command("python3", "/m", 30000, tls)
    after = {flag: command[command.index(flag) + 1] for flag in
             ("--ssl-certfile", "--ssl-keyfile", "--ssl-keyfile-password", "--ssl-ca-certs")}
    assert after == {"--ssl-certfile": str(tls.cert), "--ssl-keyfile": str(tls.key),
                     "--ssl-keyfile-password": KEY_PASSWORD, "--ssl-ca-certs": str(tls.ca)}
    assert "--enable-ssl-refresh" in command and not any("{tls_" in a for a in command)
    assert "{tls_cert}" in scenario.launch_command("python3", "/m", 30000)  # a dry run shows the placeholder


@pytest.mark.parametrize(("server", "message"), [
    ('args = ["--ssl-certfile", "{tls_cert}"]\n', "args name tls_cert without tls = true"),
    ('args = []\ntls = "yes"\n', "tls = 'yes': true or false"),
    ('start = false\ntls = true\n', "tls = true needs a server"),
])
def test_a_bad_tls_option_is_one_line_naming_the_file(tmp_path, monkeypatch, server, message):
    monkeypatch.setattr("scenarios.spec.SCENARIO_DIR", tmp_path)
    (tmp_path / "bad.toml").write_text('description = "d"\nmodel = "m"\n[server]\n' + server)
    with pytest.raises(SlimError, match=f"bad.toml is malformed: .*{message}"):
        load_scenario("bad")

