"""benchmarks/cold_start.py on CPU: a fresh host's environment puts every JIT cache under the empty HOME,
exactly where the bundle's cache lands when it is installed there."""

import importlib.util
import sys
from pathlib import Path

from slim import jit_cache
from slim.tests.test_jit_cache import VERSIONS, fake_site, make_cache

_spec = importlib.util.spec_from_file_location(
    "cold_start", Path(__file__).resolve().parents[2] / "benchmarks" / "cold_start.py")
cold_start = sys.modules.setdefault("cold_start", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(cold_start)


def test_a_fresh_home_holds_every_cache_and_the_bundled_one_lands_where_they_look(tmp_path, monkeypatch):
    home = tmp_path / "home"
    env = cold_start.fresh_env(home)
    assert all(Path(v).is_relative_to(home) for v in env.values())
    tar = make_cache(tmp_path / "jit-cache.tar.xz")
    deps = fake_site(tmp_path / "site", VERSIONS)
    monkeypatch.setattr(jit_cache, "host_facts", lambda: {"archs": ["9.0"], "driver_cuda": "13.0"})
    said = cold_start.warm_home(home, tar, jit_cache.full_key(tar), deps)
    assert said.startswith("JIT cache installed") and str(deps) not in sys.path
    assert any(Path(env["TRITON_CACHE_DIR"]).rglob("*.cubin"))  # Triton finds its kernels there
    assert (Path(env["XDG_CACHE_HOME"]) / "flashinfer/0.6.15.post1/90a").is_dir()
    monkeypatch.setattr(jit_cache, "host_facts", lambda: {"archs": ["10.0"], "driver_cuda": "13.0"})
    assert cold_start.warm_home(tmp_path / "other", tar, jit_cache.full_key(tar), deps).startswith("JIT cache skipped")
