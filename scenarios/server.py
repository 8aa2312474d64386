"""Start the upstream launch command, wait until it is healthy, stop it and all its children."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scenarios.errors import SlimError
from scenarios.tls import TlsFiles, client_context, scheme

# NVLink multicast stays off in every process we start (shared GPU hosts).
SAFE_NCCL_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen | None = None
    healthy_after_s: float | None = None
    tls: TlsFiles | None = None  # it serves HTTPS with these files: clients trust their CA

    @property
    def base_url(self) -> str:
        return f"{scheme(self.tls is not None)}://127.0.0.1:{self.port}"

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """What every client of this server passes to urlopen / HTTPSConnection; None over plain HTTP."""
        return client_context(self.tls.ca) if self.tls else None

    def start(self, cwd: Path) -> None:
        """Launch in its own process group so stop() reaches every child."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        env = {**self.env, **SAFE_NCCL_ENV, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.command, env=env, cwd=cwd, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._started = time.monotonic()

    def wait_healthy(self, timeout_s: float) -> float:
        """Poll /health until it answers 200 (it is 503 during warm-up); return seconds taken."""
        deadline = self._started + timeout_s
        context = self.ssl_context
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SlimError(f"server exited with {self.process.returncode} before healthy; "
                                f"last log line: {self.last_log_line()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=5, context=context) as response:
                    if response.status == 200:
                        self.healthy_after_s = round(time.monotonic() - self._started, 1)
                        return self.healthy_after_s
            except urllib.error.URLError as error:
                if isinstance(error.reason, ssl.SSLCertVerificationError):  # no retry mends a rejected certificate
                    raise SlimError(f"{self.base_url}: its certificate is not trusted: {error.reason}") from None
            except (ConnectionError, TimeoutError, ssl.SSLError):
                pass
            time.sleep(1)
        raise SlimError(f"server not healthy after {timeout_s:.0f} s; last log line: {self.last_log_line()}")

    def last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "(empty log)"

    def stop(self, grace_s: float = 30) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@contextmanager
def started(command: list[str], env: dict[str, str], log_path: Path, port: int,
            health_timeout_s: float = 600, tls: TlsFiles | None = None) -> Iterator[Server]:
    """A healthy server for the `with` body (scratch cwd: no stray sglang folder shadows the tree),
    stopped with all its children afterwards, also when it never got healthy. tls: the files the
    command serves HTTPS with."""
    server = Server(command, env, log_path, port, tls=tls)
    with tempfile.TemporaryDirectory(prefix="slim-serve-") as cwd:
        server.start(Path(cwd))
        try:
            server.wait_healthy(health_timeout_s)
            yield server
        finally:
            server.stop()
