"""Scenario files: a model variant, upstream launch flags, hardware needs and a workload.

A scenario is a TOML file in this folder; its name is the file name. Requests
are plain HTTP calls (method, path, JSON body) so they cover native and OpenAI
endpoints alike.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scenarios.errors import SlimError
from scenarios.tls import PLACEHOLDERS as TLS_PLACEHOLDERS
from scenarios.tls import TlsFiles

SCENARIO_DIR = Path(__file__).parent
WORKLOAD_DIR = SCENARIO_DIR / "workloads"
LOGPROB_ATOL = 1e-2  # logprobs compare within this by default; token ids and text compare exactly


@dataclass(frozen=True)
class Request:
    name: str
    path: str
    method: str = "POST"
    body: dict | None = None
    # Compared against the reference on verify; info endpoints only need their status.
    compare: bool = True
    # Send this many copies at once ("{i}" in the body becomes the copy's index).
    fan_out: int = 0
    # For a stream: hang up after this many events (a client that goes away).
    abort_after_events: int = 0
    # Sent verbatim instead of `body` (malformed input).
    raw_body: str | None = None
    # Consecutive requests naming the same group are sent at once, each after its own delay_s, so
    # different requests join and leave one running batch (per-request state filtered and merged).
    group: str = ""
    delay_s: float = 0.0
    # Extra HTTP headers (e.g. `Authorization` for a server started with --api-key).
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.delay_s and not self.group:
            raise TypeError(f"request {self.name!r} has delay_s but no group to be delayed within")


@dataclass(frozen=True)
class Hardware:
    gpus: int = 1  # in all, over every node
    min_compute_capability: float = 9.0
    nodes: int = 1  # server processes started with --nnodes/--node-rank (on one host here)
    packages: tuple[str, ...] = ()  # importable modules the scenario needs beyond upstream's own


@dataclass(frozen=True)
class Launch:
    """One node's server process: its argv and the environment it adds."""

    argv: list[str]
    env: dict[str, str]


# Filled in a companion's argv when it runs: the live server's (or, alone, a free port's) URL and port.
COMPANION_PLACEHOLDERS = ("base_url", "model_path", "port", "scenarios")
COMPANION_WHEN = ("with_server", "alone")
COMPANION_KEYS = ("argv", "when", "timeout_s", "env", "name")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")  # not JSON: '{"a": 1}' has no bare {word}


@dataclass(frozen=True)
class Companion:
    """An upstream entry point run beside the server as `python3 ARGV...`, traced like the server.

    when: "with_server" runs against the live server after the workload; "alone" runs once every
    server is down (it starts its own engine, or needs none). A run past timeout_s is stopped and
    recorded as timed out. name: unique in the scenario; defaults to the module after -m."""

    argv: tuple[str, ...]
    when: str
    timeout_s: float = 300
    env: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise ValueError(f"companion argv must be a non-empty list of strings, not {self.argv!r}")
        if self.when not in COMPANION_WHEN:
            raise ValueError(f"companion {self.module!r}: when = {self.when!r}, not one of {', '.join(COMPANION_WHEN)}")
        if not self.module:
            raise ValueError(f"companion {list(self.argv)!r} runs no -m module: give it a name")
        unknown = {m for a in self.argv for m in _PLACEHOLDER.findall(a)} - set(COMPANION_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"companion {self.module!r}: unknown placeholder(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(COMPANION_PLACEHOLDERS)})")
        if self.timeout_s <= 0:
            raise ValueError(f"companion {self.module!r}: timeout_s must be positive, not {self.timeout_s}")

    @property
    def module(self) -> str:
        """The entry point: the module after -m, else the name (a console script run through -c)."""
        return self.argv[1] if self.argv[0] == "-m" and len(self.argv) > 1 else self.name

    @property
    def label(self) -> str:
        return f"companion:{self.name or self.module}"

    def command(self, python: str, values: dict[str, str]) -> list[str]:
        """The argv with {base_url}, {model_path}, {port} and {scenarios} (this folder, for a program of
        its own such as frontend_lang.py) filled in, after the interpreter."""
        values = {"scenarios": str(SCENARIO_DIR), **values}
        return [python, *(_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), a) for a in self.argv)]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    model: str
    server_args: list[str]
    hardware: Hardware
    # Environment the server runs with (part of the scenario, identical for record and verify).
    server_env: dict[str, str] = field(default_factory=dict)
    # Why it has no recording yet where it cannot run on the lent hosts; None when runnable.
    status: str | None = None
    # Why the committed tree has no GPU verify of this recorded scenario yet (the device budget ran
    # out); a passing verify of an earlier tree must exist, and the key goes once it is verified.
    awaiting_verify: str | None = None
    requests: list[Request] = field(default_factory=list)
    # How far verify lets a logprob stray from the reference (tokens and text compare exactly);
    # a scenario that widens the default says why, with the measurement behind it.
    logprob_atol: float = LOGPROB_ATOL
    logprob_atol_reason: str | None = None
    # False ([server] absent or start = false): no server, only "alone" companions run.
    server_start: bool = True
    companions: list[Companion] = field(default_factory=list)
    # [server] tls = true: the server speaks HTTPS with certificates the harness makes for the run
    # (scenarios/tls.py, named in the args as {tls_cert} ...), and every client trusts them.
    tls: bool = False

    def __post_init__(self):
        if not self.server_start and (self.requests or any(c.when != "alone" for c in self.companions)):
            raise ValueError("a scenario without a server has no requests and runs only companions with when = alone")
        named = sorted({m for a in self.server_args for m in _PLACEHOLDER.findall(a)} & set(TLS_PLACEHOLDERS))
        if named and not self.tls:
            raise ValueError(f"[server] args name {', '.join(named)} without tls = true (nothing would make them)")
        if self.tls and not self.server_start:
            raise ValueError("tls = true needs a server to start")

    def launch_command(self, python: str, model_path: str, port: int, tls: TlsFiles | None = None) -> list[str]:
        """The upstream launch command, exactly as a user would type it ({scenarios} in an argument:
        this folder, for files a flag names such as a --config YAML; {model_path}: the checkpoint
        folder, for flags that name it again, such as --tokenizer-path; {tls_cert}, {tls_key},
        {tls_ca}, {tls_key_password}: this run's TLS files, left as they are when `tls` is None)."""
        values = {"scenarios": str(SCENARIO_DIR), "model_path": model_path,
                  **(tls.placeholder_values() if tls else {})}
        return [python, "-m", "sglang.launch_server", "--model-path", model_path, "--port", str(port),
                *(_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), a) for a in self.server_args)]

    def launch_plan(self, python: str, model_path: str, ports: list[int], dist_port: int,
                    tls: TlsFiles | None = None) -> list[Launch]:
        """Every node's process (ports[rank] each: rank>0 runs its own health server); several
        'nodes' share this host, each with its own GPUs. Rank 0 serves the API."""
        nodes = self.hardware.nodes
        if nodes == 1:
            return [Launch(self.launch_command(python, model_path, ports[0], tls), {})]
        per_node = self.hardware.gpus // nodes
        return [
            Launch([*self.launch_command(python, model_path, ports[rank], tls), "--nnodes", str(nodes),
                    "--node-rank", str(rank), "--dist-init-addr", f"127.0.0.1:{dist_port}"],
                   {"CUDA_VISIBLE_DEVICES": ",".join(str(rank * per_node + g) for g in range(per_node))})
            for rank in range(nodes)
        ]


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name: str) -> Scenario:
    """Parse scenarios/NAME.toml; an unknown name or a malformed file is a one-line error."""
    path = SCENARIO_DIR / f"{name}.toml"
    if not path.is_file():
        raise SlimError(f"unknown scenario {name!r}; known: {', '.join(scenario_names()) or 'none'}")
    try:
        data = tomllib.loads(path.read_text())
        return Scenario(
            name=name,
            description=data["description"],
            model=data["model"],
            **_server(data.get("server")),
            hardware=_hardware(data.get("hardware", {})),
            status=data.get("status"),
            awaiting_verify=data.get("awaiting_verify"),
            requests=[Request(**r) for r in _omit(_workload_requests(data.get("workload"))
                                                  + data.get("requests", []), data.get("omit"))],
            **_compare(data.get("compare")),
            companions=_companions(data.get("companion", [])),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SlimError(f"scenario file {path} is malformed: {exc}") from None


def _server(table: dict | None) -> dict:
    """[server] args (required when it starts), env, start (default true; false or no table: no server),
    tls (default false: plain HTTP)."""
    table = table or {}
    start = table.get("start", bool(table))
    if not isinstance(tls := table.get("tls", False), bool):
        raise TypeError(f"[server] tls = {tls!r}: true or false")
    return {"server_start": start, "server_args": list(table["args"] if start else table.get("args", [])),
            "server_env": {k: str(v) for k, v in table.get("env", {}).items()}, "tls": tls}


def _companions(tables: list[dict]) -> list[Companion]:
    """[[companion]] entries: known keys only, unique names."""
    companions = []
    for number, table in enumerate(tables, 1):
        unknown = set(table) - set(COMPANION_KEYS)
        if unknown:
            raise ValueError(f"[[companion]] {number}: unknown key(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(COMPANION_KEYS)})")
        env = {k: str(v) for k, v in table.get("env", {}).items()}
        companions.append(Companion(**{**table, "argv": tuple(table.get("argv", ())), "env": env}))
    labels = [c.label for c in companions]
    if duplicates := sorted({label for label in labels if labels.count(label) > 1}):
        raise ValueError(f"[[companion]] names repeat: {', '.join(duplicates)} (give each its own name)")
    return companions


def _compare(table: dict | None) -> dict:
    """[compare] logprob_atol = X, reason = "...": a wider logprob tolerance never comes without its reason."""
    if table is None:
        return {}
    if not table.get("reason"):
        raise KeyError("[compare] needs a reason for its logprob_atol")
    return {"logprob_atol": float(table["logprob_atol"]), "logprob_atol_reason": table["reason"]}


def _omit(requests: list[dict], table: dict | None) -> list[dict]:
    """[omit] requests = [...], reason = "...": a scenario drops workload requests only with a
    reason (upstream itself fails them under its flags), and only requests the workload has."""
    if table is None:
        return requests
    if not table.get("reason"):
        raise KeyError("[omit] needs a reason for dropping requests")
    unknown = set(table["requests"]) - {r["name"] for r in requests}
    if unknown:
        raise KeyError(f"[omit] names requests the workload lacks: {', '.join(sorted(unknown))}")
    return [r for r in requests if r["name"] not in table["requests"]]


def _hardware(table: dict) -> Hardware:
    return Hardware(**{**table, "packages": tuple(table.get("packages", ()))})


def _workload_requests(workload: str | list[str] | None) -> list[dict]:
    """The requests of shared workload files (scenarios/workloads/NAME.toml), one name or several in order."""
    if workload is None:
        return []
    requests = []
    for name in [workload] if isinstance(workload, str) else workload:
        path = WORKLOAD_DIR / f"{name}.toml"
        if not path.is_file():
            raise SlimError(f"unknown workload {name!r} (no {path})")
        requests += tomllib.loads(path.read_text())["requests"]
    return requests
