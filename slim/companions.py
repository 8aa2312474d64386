"""Companion entry points (bench_serving, check_env, compile_deep_gemm, ...): run, capture, compare.

Each runs as `python3 ARGV...` in its own process group, with the environment the server gets
(on record the tracer's boot folder is on PYTHONPATH, so every Python process it starts traces
itself). Its exit code and the tail of its output become an entry of the run's outputs, beside
the HTTP requests: name "companion:NAME", path "companion:MODULE", status = exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from scenarios.server import SAFE_NCCL_ENV
from scenarios.spec import Companion

PATH_PREFIX = "companion:"
TIMED_OUT = 124  # the status `timeout(1)` gives a command it stopped; the entry also says timed_out
TAIL_LINES = 40
TAIL_CHARS = 4000
STOP_GRACE_S = 20  # SIGTERM first: the tracer flushes its shard on the way out


def placeholder_values(base_url: str, model_path: Path | str, port: int) -> dict[str, str]:
    return {"base_url": base_url, "model_path": str(model_path), "port": str(port)}


def is_companion(output: dict) -> bool:
    return str(output.get("path", "")).startswith(PATH_PREFIX)


def split_companions(outputs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the HTTP requests' outputs, the companions' outputs), each in order."""
    return [o for o in outputs if not is_companion(o)], [o for o in outputs if is_companion(o)]


def tail(text: str) -> str:
    """The last lines of a companion's output: its result or its traceback."""
    return "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])[-TAIL_CHARS:]


def stop_group(pgid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group (a companion's leftover engine or server too), SIGKILL what stays."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_companion(companion: Companion, python: str, values: dict[str, str], env: dict[str, str],
                  cwd: Path, log_path: Path) -> dict:
    """Run one companion to its end or its timeout; its output entry (full output in log_path)."""
    command = companion.command(python, values)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, env={**env, **SAFE_NCCL_ENV, **companion.env, "PYTHONUNBUFFERED": "1"},
                                   cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status, timed_out = process.wait(timeout=companion.timeout_s), False
        except subprocess.TimeoutExpired:
            status, timed_out = TIMED_OUT, True
        finally:
            stop_group(process.pid)  # its own session: the group id is its pid
            process.wait()
    elapsed = round(time.monotonic() - started, 3)
    return {
        "name": companion.label, "method": "RUN", "path": PATH_PREFIX + companion.module,
        "body": {"argv": list(companion.argv), "when": companion.when},
        "status": status, "timed_out": timed_out, "compare": False,
        "output": tail(log_path.read_text(errors="replace")), "elapsed_s": elapsed,
    }


def run_companions(companions: list[Companion], when: str, python: str, values: dict[str, str],
                   env: dict[str, str], cwd: Path, log_path: Path) -> list[dict]:
    """Every companion of this `when`, in the scenario's order; one log each beside log_path."""
    return [run_companion(c, python, values, env, cwd, companion_log(log_path, c))
            for c in companions if c.when == when]


def companion_log(log_path: Path, companion: Companion) -> Path:
    """logs/S.upstream.log -> logs/S.upstream.companion.NAME.log (verify's diagnosis reads S.slim*.log)."""
    return log_path.with_suffix(f".{companion.label.replace(':', '.')}.log")


def companion_mismatch(reference: list[dict], actual: list[dict]) -> str | None:
    """The first companion that exited 0 on the reference run and did not here (or did not run).
    Exit codes only: what they print (throughput, timings) differs from run to run."""
    by_name = {o["name"]: o for o in actual}
    for ref in reference:
        if ref["status"] != 0:
            continue
        got = by_name.get(ref["name"])
        if got is None:
            return f"{ref['name']}: not run"
        if got["status"] != 0:
            how = f"timed out after {got['elapsed_s']:.0f} s" if got.get("timed_out") else f"exit {got['status']}"
            last = got["output"].strip().splitlines()[-1:] or ["(no output)"]
            return f"{ref['name']}: {how} != reference exit 0; last line: {last[0][:200]}"
    return None
