"""Facts about the Python runtime a server runs in: where sglang comes from, package versions."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from slim.errors import SlimError

# Distributions whose versions decide kernels and numerics: stored with every run.
KEY_DISTRIBUTIONS = ("sglang", "torch", "triton", "sglang-kernel", "flashinfer-python", "sgl-deep-gemm",
                     "transformers", "tokenizers", "xgrammar")

_PROBE = """
import importlib.metadata as md, importlib.util as u, json, sys
spec = u.find_spec("sglang")
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = md.version(name)
    except md.PackageNotFoundError:
        versions[name] = None
print(json.dumps({"sglang_origin": spec.origin if spec else None, "versions": versions}))
"""


def probe(env: dict[str, str], python: str = sys.executable) -> dict:
    """Ask the server's interpreter (same env) where sglang resolves and which versions it sees."""
    result = subprocess.run([python, "-c", _PROBE, *KEY_DISTRIBUTIONS], env=env, capture_output=True,
                            text=True, cwd="/")
    if result.returncode != 0:
        raise SlimError(f"cannot probe the server runtime: {result.stderr.strip().splitlines()[-1:]}")
    facts = json.loads(result.stdout)
    if facts["sglang_origin"] is None:
        raise SlimError("sglang is not importable in the server environment (PYTHONPATH?)")
    return facts


def package_root(sglang_origin: str) -> Path:
    """'/site/sglang/__init__.py' -> '/site' (the folder that holds the package)."""
    return Path(sglang_origin).parent.parent


def host_facts() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "host": platform.node()}


def host_environment(gpus, versions: dict) -> dict:
    """The `environment` a recording or verify report stores: host, GPUs, package versions."""
    return {**host_facts(), "gpus": [g.__dict__ for g in gpus], "versions": versions}


def gpu_lanes() -> int:
    """How many servers shared this GPU at once (ci/gpu_session.sh LANES exports SLIM_VERIFY_LANES):
    recordings and verify reports store it, since the KV pool is then sized from less free memory."""
    return int(os.environ.get("SLIM_VERIFY_LANES", "1"))
