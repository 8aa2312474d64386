"""`slim verify --kits`: upstream's server-contract kit tests (slim/fuzz/kit_selection.py) against the
server one side of a fuzz run serves, while it is still up and after the fuzz requests.

The tests run in a subprocess (slim/fuzz/kit_runner.py, standard library only) whose PYTHONPATH puts
the PRISTINE upstream site first on both sides: the kits import sglang.test.* (which the slimmed tree
does not ship) and judge the server only over HTTP. Then comes the harness's own PYTHONPATH (the
third-party site). A test past its timeout ends that runner; a fresh one takes the tests left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from slim.fuzz.kit_selection import SELECTED, Kit, flag_value
from slim.surface.policy import REFUSAL_MARK

RUNNER = Path(__file__).with_name("kit_runner.py")
KITS_DIR = Path("sglang/test/kits")  # in the upstream site the kits come from
TIMEOUT_S = 90.0  # one test on a tiny model takes seconds; past this it hangs
UNBOUNDED_S = 4 * 3600  # a runner's hard limit when no budget bounds the tests
START_SLACK_S = 120  # a runner's own imports and tokenizer loads, over the tests' budget


@dataclass(frozen=True)
class KitsPlan:
    """What `--kits` asked for: the upstream site the kits come from, a per-test timeout, a budget per side."""

    upstream_site: Path
    timeout_s: float = TIMEOUT_S
    budget_s: float = 0  # per side; 0: none of its own (a fuzz budget still bounds it)

    def side_budget(self, end_by: float | None) -> float | None:
        """Seconds for one side's kits: the plan's budget, cut to what the side has left until end_by."""
        left = [b for b in (self.budget_s or None, end_by and end_by - time.monotonic()) if b is not None]
        return max(0.0, min(left)) if left else None


def runner_kit(kit: Kit, flags: list[str]) -> dict:
    """One selected kit as the runner reads it; with its skip reason when the scenario lacks its flag."""
    entry = {"module": kit.module, "mixin": kit.mixin, "only": list(kit.only), "setup": list(kit.setup),
             "after": list(kit.after), "adapter": kit.adapter,
             "attrs": {attr: flag_value(flags, flag) for attr, flag in kit.flag_attrs}}
    if kit.needs_flag and flag_value(flags, kit.needs_flag) is None:
        entry["skip"] = f"the scenario does not serve {kit.needs_flag}"
    return entry


def runner_spec(base_url: str, pid: int, model_path: Path, served_model: str, flags: list[str],
                timeout_s: float, kits: tuple[Kit, ...] | None = None) -> dict:
    """What the runner needs: the server, the kits (SELECTED unless given), the attributes upstream's
    test fixtures would set."""
    common = {"base_url": base_url, "model": str(model_path), "served_model_name": served_model,
              "api_key": flag_value(flags, "--api-key") or "sk-test"}
    chosen = SELECTED if kits is None else kits
    return {"base_url": base_url, "pid": pid, "model_path": str(model_path), "refusal_mark": REFUSAL_MARK,
            "timeout_s": timeout_s, "common": common, "kits": [runner_kit(kit, flags) for kit in chosen],
            "done": [], "budget_s": None}


def runner_env(upstream_site: Path, ca: Path | None) -> dict[str, str]:
    """The harness's environment with the pristine upstream site first; the CA of an HTTPS server trusted."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(upstream_site), os.environ.get("PYTHONPATH", "")) if p)
    if ca is not None:  # requests, aiohttp and the openai client (httpx) read these
        env.update(REQUESTS_CA_BUNDLE=str(ca), SSL_CERT_FILE=str(ca))
    return env


def launch(spec: dict, env: dict[str, str], log: Path, limit_s: float) -> dict:
    """One runner process: its document, or {"error": why} when it gave none."""
    with tempfile.TemporaryDirectory(prefix="slim-kits-") as scratch:  # cwd: no stray package shadows a kit
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as stderr:
            # -P: the runner's folder (slim/fuzz: run.py, compare.py, ...) is not put first on sys.path
            process = subprocess.Popen([sys.executable, "-P", str(RUNNER), str(spec_path)], cwd=scratch, env=env,
                                       stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
            try:
                out, _ = process.communicate(timeout=limit_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                return {"error": f"the kit runner ran past {limit_s:.0f} s and was killed (log: {log.name})"}
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, UnicodeDecodeError, json.JSONDecodeError):
        return {"error": f"the kit runner exited {process.returncode} without its document (log: {log.name})"}


def run_kits(spec: dict, env: dict[str, str], log: Path, budget_s: float | None) -> dict:
    """Every selected kit test against one server, runner after runner until none stops on a timeout."""
    started, tests, errors, launches = time.monotonic(), {}, [], 0
    while True:
        left = None if budget_s is None else max(0.0, budget_s - (time.monotonic() - started))
        document = launch({**spec, "budget_s": left, "done": sorted(tests)}, env, log,
                          (UNBOUNDED_S if left is None else left) + spec["timeout_s"] + START_SLACK_S)
        launches += 1
        if "error" in document:
            errors.append(document["error"])
            break
        tests.update(document["tests"])
        if not document.get("stopped_after_timeout"):
            break
    return {"tests": tests, "seconds": round(time.monotonic() - started, 1), "launches": launches,
            "runner_errors": errors, "budget_s": budget_s, "timeout_s": spec["timeout_s"]}


def kits_on_server(plan: KitsPlan, base_url: str, pid: int, model_path: Path, served_model: str,
                   flags: list[str], ca: Path | None, log: Path, end_by: float | None) -> dict:
    """One side's kits phase, given its running server."""
    spec = runner_spec(base_url, pid, model_path, served_model, flags, plan.timeout_s)
    return run_kits(spec, runner_env(plan.upstream_site, ca), log, plan.side_budget(end_by))
