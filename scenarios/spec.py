"""Scenario files: a model variant, upstream launch flags, hardware needs and a workload.

A scenario is a TOML file in this folder; its name is the file name. Requests
are plain HTTP calls (method, path, JSON body) so they cover native and OpenAI
endpoints alike.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from slim.errors import SlimError

SCENARIO_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Request:
    name: str
    path: str
    method: str = "POST"
    body: dict | None = None
    # Compared against the reference on verify; info endpoints only need their status.
    compare: bool = True


@dataclass(frozen=True)
class Hardware:
    gpus: int = 1
    min_compute_capability: float = 9.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    model: str
    server_args: list[str]
    hardware: Hardware
    # Environment the server runs with (part of the scenario, identical for record and verify).
    server_env: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def launch_command(self, python: str, model_path: str, port: int) -> list[str]:
        """The upstream launch command, exactly as a user would type it."""
        return [python, "-m", "sglang.launch_server", "--model-path", model_path,
                "--port", str(port), *self.server_args]


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
            server_args=list(data["server"]["args"]),
            server_env={k: str(v) for k, v in data["server"].get("env", {}).items()},
            hardware=Hardware(**data.get("hardware", {})),
            requests=[Request(**r) for r in data["requests"]],
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise SlimError(f"scenario file {path} is malformed: {exc}") from None
