"""slim/deps.py: which of upstream's distributions the slimmed pyproject declares, and why."""

import ast

from slim.deps import DEFERRED, MODULE, OPTIONAL, dependencies, imported_tops

SOURCE = '''
import zmq
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import pandas
try:
    import flash_attn
except ImportError:
    flash_attn = None
class Loader:
    import orjson
    def hasher(self):
        import xxhash
        import zmq
        return lambda: __import__("x")
def lazy():
    from torchao.quantization import quantize_
    import requests
'''


def test_levels_of_imports():
    assert imported_tops(ast.parse(SOURCE)) == {
        "zmq": MODULE, "typing": MODULE, "flash_attn": OPTIONAL, "orjson": MODULE,
        "xxhash": DEFERRED, "torchao": DEFERRED, "requests": DEFERRED}


REQUIRES = ["pyzmq>=25", "orjson", "flash-attn-4>=4", "xxhash", "torchao==0.17.0", "requests", "pandas",
            "scipy", "torch==2.11.0", "ninja"]


def verdicts(recorded=(), refused=()):
    imports = {"sglang/a.py": imported_tops(ast.parse(SOURCE))}
    return {d.name: (d.declared, d.why) for d in dependencies(REQUIRES, imports, set(recorded), set(refused))}


def test_module_level_kept_lazy_only_dropped_recorded_kept():
    out = verdicts(recorded={"requests", "scipy"}, refused={"flag:--torchao-config"})
    assert out["pyzmq"] == (True, "module-level import in sglang/a.py")
    assert out["orjson"][0]  # a class body runs on import
    assert out["flash-attn-4"][0] is False  # optional upstream too
    assert out["torchao"] == (False, "serves only refused options (flag:--torchao-config)")
    assert out["requests"][0] and out["requests"][1].startswith("recorded")
    assert out["scipy"][0] is False  # recorded, but no kept module imports it
    assert out["pandas"][0] is False  # TYPE_CHECKING only
    assert out["torch"][0] and out["ninja"][0]  # always


def test_accepted_option_keeps_a_lazy_import():
    out = verdicts()
    assert out["torchao"][0] and "flag:--torchao-config" in out["torchao"][1]
    assert out["xxhash"][0] and "flag:--load-format=presharded" in out["xxhash"][1]
    assert out["requests"] == (True, "lazy import in sglang/a.py serving an option not mapped in SERVES "
                                     "(kept to be safe)")


def test_committed_pyproject_requirements_are_upstreams():
    """CI, offline: every declared requirement parses and is upstream's, pin and markers included
    (the resolver itself: test_pip_resolves_the_slimmed_pyproject_to_what_the_plan_declares)."""
    import tomllib
    from email.parser import Parser
    from pathlib import Path

    import pytest
    from packaging.requirements import Requirement

    from slim import upstream as up

    repo = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((repo / "sglang/python/pyproject.toml").read_text())["project"]["dependencies"]
    metas = sorted(up.cache_root().glob("upstream/sglang-*/sglang-*.dist-info/METADATA"))
    if not metas:
        pytest.skip("no unpacked upstream wheel (slim fetch)")
    upstream = {str(Requirement(r)) for r in Parser().parsestr(metas[-1].read_text()).get_all("Requires-Dist")}
    assert [str(Requirement(r)) for r in declared if str(Requirement(r)) not in upstream] == []


def _pypi_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def test_pip_resolves_the_slimmed_pyproject_to_what_the_plan_declares(tmp_path):
    """pip's resolver accepts sglang/python as committed (a dry-run install from the package index, no
    download of the wheels themselves), and what the slimmed sglang requires is exactly the plan's list."""
    import gzip
    import json
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    from slim.deps import requirement_name

    if not _pypi_reachable():
        pytest.skip("pypi.org unreachable: the resolver needs the package index")
    repo = Path(__file__).resolve().parents[2]
    # pip builds the metadata where the project is (an sglang.egg-info): a copy of the pyproject with an
    # empty package keeps the committed tree as it is, and the dependencies are the pyproject's alone
    project = tmp_path / "python"
    (project / "sglang").mkdir(parents=True)
    (project / "sglang/__init__.py").write_text("")
    (project / "pyproject.toml").write_bytes((repo / "sglang/python/pyproject.toml").read_bytes())
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                          "--report", str(report), str(project)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    resolved = json.loads(report.read_text())["install"]
    installs = {requirement_name(i["metadata"]["name"]): i["metadata"] for i in resolved}
    required = {requirement_name(r) for r in installs["sglang"].get("requires_dist") or [] if "extra ==" not in r}
    plan = json.loads(gzip.decompress((repo / "sglang/PLAN.json.gz").read_bytes()))
    assert required == {requirement_name(row["name"]) for row in plan["dependencies"]}
    assert required <= set(installs)  # each one resolved to a distribution pip would install
    assert installs["torch"]["version"] == "2.11.0"
