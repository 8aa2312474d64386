"""What GPUs this host has, and whether a scenario can run on them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass

from scenarios.errors import SlimError
from scenarios.spec import Scenario


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: float
    driver: str


def detect_gpus() -> list[Gpu]:
    """GPUs as nvidia-smi reports them; none when there is no NVIDIA driver."""
    if shutil.which("nvidia-smi") is None:
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        return []
    gpus = []
    for line in result.stdout.strip().splitlines():
        name, cap, driver = (part.strip() for part in line.split(","))
        gpus.append(Gpu(name, float(cap), driver))
    return gpus


def describe(gpus: list[Gpu]) -> str:
    if not gpus:
        return "no NVIDIA GPU"
    return f"{len(gpus)}x sm{round(gpus[0].compute_capability * 10)} ({gpus[0].name})"


def require(scenario: Scenario, gpus: list[Gpu]) -> None:
    """Refuse in one line when this host cannot run the scenario."""
    need = scenario.hardware
    usable = [g for g in gpus if g.compute_capability >= need.min_compute_capability]
    if len(usable) < need.gpus:
        raise SlimError(
            f"{scenario.name} needs {need.gpus} GPU(s) of sm{round(need.min_compute_capability * 10)}+; "
            f"this host has {describe(gpus)}"
        )
    missing = [name for name in need.packages if importlib.util.find_spec(name) is None]
    if missing:
        raise SlimError(f"{scenario.name} needs the package(s) {', '.join(missing)}, not importable here")
