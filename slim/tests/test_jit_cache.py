"""slim/jit_cache.py: a JIT cache's key read from the cache itself, the host and runtime checks, and the
bundle's unpack.sh installing it only where it fits (a fake nvidia-smi stands in for the GPU)."""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from slim.bundle import build_bundle
from slim.errors import SlimError
from slim.jit_cache import cache_key, full_key, mismatch
from slim.tests.test_bundle import inputs  # noqa: F401  (the fake site and tree a bundle packs)

VERSIONS = {"apache-tvm-ffi": "0.1.11", "flashinfer-python": "0.6.15.post1", "triton": "3.6.0"}


def make_cache(path: Path, arch: str = "90") -> Path:
    """A cache tar as ci/gpu_session.sh packs $HOME's: one kernel of each JIT library, built for `arch`."""
    triton_meta = json.dumps({"target": {"backend": "cuda", "arch": int(arch), "warp_size": 32},
                              "triton_version": "3.6.0"}).encode()
    members = {
        f".cache/flashinfer/0.6.15.post1/{arch}a/cached_ops/sampling/sampling.so": b"so",
        f".cache/tvm-ffi/sgl_kernel_jit_rope_d3__arch_{arch[:-1]}.{arch[-1]}a__tvmffi_0.1.11/rope.so": b"so",
        f".cache/deep_gemm/cache/kernel.sm{arch}_fp8_gemm_1d2d.05c5/kernel.cubin": b"cubin",
        ".triton/cache/GW5V/fused_moe_kernel.json": triton_meta,
        ".triton/cache/GW5V/fused_moe_kernel.cubin": b"cubin",
    }
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_site(site: Path, versions: dict, cuda: str = "13.0") -> Path:
    for dist, version in {**versions, "torch": "2.11.0"}.items():
        meta = site / f"{dist.replace('-', '_')}-{version}.dist-info" / "METADATA"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (site / "torch").mkdir(exist_ok=True)
    (site / "torch/__init__.py").write_text("")
    (site / "torch/version.py").write_text(f"__version__ = '2.11.0'\ncuda: Optional[str] = '{cuda}'\n")
    return site


def fake_gpu(tmp_path: Path, cap: str, driver_cuda: str = "13.0") -> dict:
    """An environment whose PATH has an nvidia-smi that reports one GPU of compute capability `cap`."""
    bin_dir = tmp_path / f"bin-{cap}"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\ncase "$1" in --query-gpu=*) echo {cap} ;; '
                   f'*) echo "| Driver Version: 580.159.04  CUDA Version: {driver_cuda} |" ;; esac\n')
    smi.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_the_cache_says_what_it_was_built_for(tmp_path):
    tar = make_cache(tmp_path / "jit-cache.tar.xz")
    assert cache_key(tar) == {"archs": ["9.0"], "versions": VERSIONS}
    (tmp_path / "jit-cache.tar.xz.key.json").write_text(json.dumps(
        {"versions": {"torch": "2.11.0", "sgl-deep-gemm": "0.1.5.post1"}, "cuda": "13.0"}))
    key = full_key(tar)  # the capture run's facts beside it
    assert key["cuda"] == "13.0" and key["versions"] == {**VERSIONS, "torch": "2.11.0", "sgl-deep-gemm": "0.1.5.post1"}
    assert cache_key(make_cache(tmp_path / "b200.tar.xz", "100"))["archs"] == ["10.0"]


def test_a_mismatch_is_named_in_one_phrase():
    key = {"archs": ["9.0"], "versions": VERSIONS, "cuda": "13.0"}
    runtime = {"versions": dict(VERSIONS), "cuda": "13.0"}
    host = {"archs": ["9.0"], "driver_cuda": "13.0"}
    assert mismatch(key, runtime, host) is None
    assert mismatch(key, runtime, None) == "no NVIDIA GPU here (nvidia-smi not found)"
    assert mismatch(key, runtime, {**host, "archs": ["10.0"]}) == \
        "built for compute capability 9.0, this host has 10.0"
    newer = {"versions": {**VERSIONS, "flashinfer-python": "0.6.16"}, "cuda": "13.0"}
    assert mismatch(key, newer, host) == "built with flashinfer-python 0.6.15.post1, the runtime has 0.6.16"
    assert mismatch(key, {**runtime, "cuda": "12.9"}, host) == \
        "built with CUDA 13.0, the runtime's torch has CUDA 12.9"
    assert mismatch(key, runtime, {**host, "driver_cuda": "12.8"}) == \
        "built with CUDA 13.0, the driver runs CUDA 12.8 at most"
    assert mismatch({**key, "archs": []}, runtime, host) == "the cache holds no kernel of a known JIT library"


def test_bundle_ships_the_cache_and_unpack_installs_it_only_where_it_fits(inputs, tmp_path):  # noqa: F811
    site, wheels, tree, usage, _ = inputs
    fake_site(site, VERSIONS)
    tar = make_cache(tmp_path / "jit-cache.tar.xz")
    out = tmp_path / "out"
    manifest = build_bundle(site, tree, out, usage, wheels, 1 << 20, ["r1"], preset="-0", jit_cache=tar)
    assert manifest["jit_cache"]["key"] == {"archs": ["9.0"], "versions": VERSIONS}
    listed = {line.split()[1] for line in (out / "SHA256SUMS").read_text().splitlines()}
    assert {"jit-cache.tar.xz", "jit_cache.py"} <= listed

    def unpack(cap: str, name: str) -> tuple[str, Path]:
        home = tmp_path / f"home-{name}"
        env = {**fake_gpu(tmp_path, cap), "SLIM_JIT_HOME": str(home)}
        run = subprocess.run(["sh", str(out / "unpack.sh"), str(tmp_path / f"dest-{name}")], env=env,
                             capture_output=True, text=True, check=True)
        return run.stdout.strip(), home

    said, home = unpack("9.0", "h100")
    assert said.startswith("JIT cache installed under") and "compute capability 9.0" in said
    assert (home / ".triton/cache/GW5V/fused_moe_kernel.cubin").read_bytes() == b"cubin"
    said, home = unpack("10.0", "b200")
    assert said == "JIT cache skipped: built for compute capability 9.0, this host has 10.0"
    assert not home.exists()  # nothing written


def test_bad_cache_input_is_one_line_and_writes_nothing(inputs, tmp_path):  # noqa: F811
    site, wheels, tree, usage, _ = inputs
    out = tmp_path / "out"
    with pytest.raises(SlimError, match="no JIT cache at"):
        build_bundle(site, tree, out, usage, wheels, 1 << 20, [], preset="-0", jit_cache=tmp_path / "nope.tar.xz")
    empty = tmp_path / "empty.tar.xz"
    tarfile.open(empty, "w:xz").close()
    with pytest.raises(SlimError, match="holds no kernel of a known JIT library"):
        build_bundle(site, tree, out, usage, wheels, 1 << 20, [], preset="-0", jit_cache=empty)
    assert not out.exists()


def test_the_checker_runs_alone_with_the_stdlib(tmp_path):
    """unpack.sh runs jit_cache.py where slim is not installed: it must import nothing of the project."""
    source = (Path(__file__).resolve().parents[1] / "jit_cache.py").read_text()
    assert "from slim" not in source and "import slim" not in source
    run = subprocess.run([sys.executable, "-I", str(Path(__file__).resolve().parents[1] / "jit_cache.py")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "install TAR MANIFEST_JSON SITE HOME" in run.stderr
