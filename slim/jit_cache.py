"""The JIT caches a warm start needs (Triton, FlashInfer, tvm-ffi kernels, DeepGEMM), keyed and checked.

A cache tar (as ci/gpu_session.sh brings it back: .cache/flashinfer, .cache/tvm-ffi, .cache/deep_gemm,
.triton under $HOME) says itself what it was built for: FlashInfer's folder is <version>/<arch>, a
tvm-ffi kernel's name ends in __arch_<arch>__tvmffi_<version>, a DeepGEMM kernel's starts with
kernel.sm<arch>, a Triton kernel's JSON holds its target arch and triton_version. The capture run
adds what the tar cannot say (torch and its CUDA) in a key file beside it (TAR + .key.json).

A cache built for another GPU arch, another library version or a newer CUDA than the driver runs
would only be misses or load errors, so it is not installed: one line says why. Stdlib only: the
bundle ships this file and its unpack.sh runs `python3 jit_cache.py install ...` with no slim there.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOTS = (".cache/flashinfer/", ".cache/tvm-ffi/", ".cache/deep_gemm/", ".triton/")
FLASHINFER = re.compile(r"\.cache/flashinfer/([^/]+)/(\d+a?)/")
TVM_FFI = re.compile(r"__arch_([\d.]+a?)__tvmffi_([^/]+)")
DEEP_GEMM = re.compile(r"\.cache/deep_gemm/cache/kernel\.sm(\d+)")


def arch(text: str | int) -> str:
    """A compute capability as nvidia-smi spells it: 90, '90a', '9.0a', 'sm90' -> '9.0'."""
    digits = re.sub(r"\D", "", str(text))
    return f"{digits[:-1]}.{digits[-1]}"


def cache_key(tar_path: Path) -> dict:
    """What the cache says it was built for: GPU archs and library versions (distribution names)."""
    archs, versions = set(), {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if m := FLASHINFER.match(name):
                versions["flashinfer-python"] = m[1]
                archs.add(arch(m[2]))
            if m := TVM_FFI.search(name):
                archs.add(arch(m[1]))
                versions["apache-tvm-ffi"] = m[2]
            if m := DEEP_GEMM.match(name):
                archs.add(arch(m[1]))
            if name.startswith(".triton/cache/") and name.endswith(".json") and member.isfile():
                data = json.loads(tar.extractfile(member).read() or b"{}")
                if "target" in data:
                    archs.add(arch(data["target"]["arch"]))
                    versions["triton"] = data.get("triton_version", versions.get("triton"))
    return {"archs": sorted(archs), "versions": dict(sorted(versions.items()))}


def full_key(tar_path: Path) -> dict:
    """cache_key plus the capture run's facts beside the tar (torch, cuda), where it wrote them."""
    key = cache_key(tar_path)
    side = tar_path.with_name(tar_path.name + ".key.json")
    if side.is_file():
        facts = json.loads(side.read_text())
        key["versions"] |= {dist: v for dist, v in facts.get("versions", {}).items() if v}  # found there
        key["cuda"] = facts.get("cuda")
    return key


def runtime_facts(versions: list[str], site: Path | None = None) -> dict:
    """The versions the server's Python would load (`site` first, then sys.path), and torch's CUDA;
    read from the distributions' metadata and torch/version.py, nothing imported."""
    path = ([str(site)] if site else []) + sys.path
    found = {dist: next((d.version for d in importlib.metadata.distributions(name=dist, path=path)), None)
             for dist in versions}
    spec = importlib.machinery.PathFinder.find_spec("torch", path)
    version_py = Path(spec.origin).with_name("version.py") if spec and spec.origin else None
    cuda = re.search(r"^cuda\s*(?::\s*\S+)?\s*=\s*'([^']+)'", version_py.read_text(), re.M) if (
        version_py and version_py.is_file()) else None
    return {"versions": found, "cuda": cuda[1] if cuda else None}


def host_facts() -> dict | None:
    """The GPUs' compute capabilities and the newest CUDA the driver runs; None without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    caps = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.split()
    header = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
    driver = re.search(r"CUDA Version:\s*([\d.]+)", header)
    return {"archs": sorted(set(caps)), "driver_cuda": driver[1] if driver else None}


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def mismatch(key: dict, runtime: dict, host: dict | None) -> str | None:
    """Why this cache does not fit this host and runtime, in one phrase; None when it fits."""
    if host is None:
        return "no NVIDIA GPU here (nvidia-smi not found)"
    if not key["archs"]:
        return "the cache holds no kernel of a known JIT library"
    if other := sorted(set(key["archs"]) - set(host["archs"])):
        return f"built for compute capability {', '.join(other)}, this host has {', '.join(host['archs']) or 'none'}"
    for dist, built in key["versions"].items():
        if runtime["versions"].get(dist) != built:
            return f"built with {dist} {built}, the runtime has {runtime['versions'].get(dist) or 'none'}"
    cuda = key.get("cuda")
    if cuda and runtime.get("cuda") and runtime["cuda"] != cuda:
        return f"built with CUDA {cuda}, the runtime's torch has CUDA {runtime['cuda']}"
    if cuda and host["driver_cuda"] and _as_tuple(host["driver_cuda"]) < _as_tuple(cuda):
        return f"built with CUDA {cuda}, the driver runs CUDA {host['driver_cuda']} at most"
    return None


def install(tar_path: Path, key: dict, home: Path, site: Path | None = None) -> str:
    """Unpack the cache under `home` if it fits this host and the runtime (`site`, then sys.path); one
    line either way."""
    why = mismatch(key, runtime_facts(list(key["versions"]), site), host_facts())
    if why:
        return f"JIT cache skipped: {why}"
    with tarfile.open(tar_path) as tar:
        members = [m for m in tar if m.name.removeprefix("./").startswith(ROOTS)]
        # the "data" filter (no absolute paths, links out of `home`, devices) where this Python has it
        tar.extractall(home, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return f"JIT cache installed under {home} ({len(members)} entries; compute capability {', '.join(key['archs'])})"


def bundle_entry(tar_path: Path, out: Path) -> dict:
    """Put the cache and this checker into a bundle folder: the manifest's `jit_cache` entry."""
    import hashlib

    key = full_key(tar_path)
    if not key["archs"]:
        raise ValueError(f"{tar_path} holds no kernel of a known JIT library (.cache/flashinfer, .triton, ...)")
    shutil.copyfile(tar_path, out / "jit-cache.tar.xz")
    shutil.copyfile(__file__, out / "jit_cache.py")
    files = [{"name": name, "size": (out / name).stat().st_size,
              "sha256": hashlib.sha256((out / name).read_bytes()).hexdigest()}
             for name in ("jit-cache.tar.xz", "jit_cache.py")]
    return {"key": key, "files": files}


def main(argv: list[str]) -> int:
    """python3 jit_cache.py install TAR MANIFEST_JSON SITE HOME  (the bundle's unpack.sh runs this)."""
    if len(argv) != 5 or argv[0] != "install":
        print(main.__doc__, file=sys.stderr)
        return 2
    tar_path, manifest, site, home = (Path(a) for a in argv[1:])
    print(install(tar_path, json.loads(manifest.read_text())["jit_cache"]["key"], home, site))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
