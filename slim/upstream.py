"""Get the pinned upstream sglang tree and prove it is the pristine one.

The wheel's RECORD lists a sha256 for every file; pinning RECORD's own hash
therefore pins the whole tree, so a local `--upstream DIR` is checked the same
way as a fresh download.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from slim.errors import SlimError

PIN_FILE = Path(__file__).with_name("upstream.toml")
PACKAGE = "sglang"
# Trees that are not the LLM server: never part of the slimming universe.
OUT_OF_SCOPE = ("sglang/multimodal_gen/",)
# Folders the GPU runtime carries apart (ci/build_gpu_runtime.sh: .carry/sglang-test.tar.xz, upstream's
# test harness and operator tools): a tree may lack one whole; where it holds one, it is checked like the rest.
CARRIED_APART = ("sglang/test/",)


@dataclass(frozen=True)
class Pin:
    version: str
    wheel: str
    wheel_sha256: str
    record_sha256: str

    @property
    def dist_info(self) -> str:
        return f"{PACKAGE}-{self.version}.dist-info"


def load_pin() -> Pin:
    return Pin(**tomllib.loads(PIN_FILE.read_text()))


def cache_root() -> Path:
    return Path(os.environ.get("SLIM_CACHE", Path.home() / ".cache" / "slim"))


def default_tree(pin: Pin) -> Path:
    return cache_root() / "upstream" / f"{PACKAGE}-{pin.version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_digest(hexdigest: str) -> str:
    """RECORD's encoding: urlsafe base64 of the raw digest, no padding."""
    return base64.urlsafe_b64encode(bytes.fromhex(hexdigest)).rstrip(b"=").decode()


def read_record(tree: Path, pin: Pin) -> dict[str, str]:
    """Path -> RECORD digest for every file of the package, after checking RECORD itself."""
    record = tree / pin.dist_info / "RECORD"
    if not record.is_file():
        found = sorted(p.name for p in tree.glob(f"{PACKAGE}-*.dist-info"))
        if found:
            raise SlimError(f"{tree} holds {found[0]}, but slim is pinned to {PACKAGE} {pin.version}")
        raise SlimError(f"{tree} has no {pin.dist_info}/RECORD: not an unpacked {PACKAGE} {pin.version} wheel")
    if sha256_file(record) != pin.record_sha256:
        raise SlimError(f"{record} differs from the pinned {PACKAGE} {pin.version} RECORD")
    digests = {}
    for line in record.read_text().splitlines():
        path, digest, _size = line.rsplit(",", 2)
        if path.startswith(f"{PACKAGE}/") and digest:
            digests[path] = digest.removeprefix("sha256=")
    return digests


def verify_tree(tree: Path, pin: Pin | None = None) -> Path:
    """Raise SlimError unless `tree` holds the pristine pinned package; return it resolved."""
    pin = pin or load_pin()
    tree = tree.resolve()
    digests = read_record(tree, pin)
    absent = absent_folders(tree)
    for rel, digest in digests.items():
        if rel.startswith(OUT_OF_SCOPE + absent):
            continue
        path = tree / rel
        if not path.is_file():
            raise SlimError(f"modified upstream tree: {rel} is missing in {tree}")
        if _record_digest(sha256_file(path)) != digest:
            raise SlimError(f"modified upstream tree: {rel} differs from {PACKAGE} {pin.version}")
    for path in (tree / PACKAGE).rglob("*.py"):
        rel = path.relative_to(tree).as_posix()
        if rel not in digests and not rel.startswith(OUT_OF_SCOPE):
            raise SlimError(f"modified upstream tree: {rel} is not part of {PACKAGE} {pin.version}")
    return tree


def absent_folders(tree: Path) -> tuple[str, ...]:
    """The CARRIED_APART folders `tree` lacks whole."""
    return tuple(folder for folder in CARRIED_APART if not (tree / folder).is_dir())


def download_wheel(pin: Pin, into: Path) -> Path:
    """Fetch the pinned wheel from PyPI with pip (so proxies and mirrors apply) and check its hash."""
    platform_args = ["--platform", "manylinux_2_34_x86_64", "--python-version", "3.12", "--implementation", "cp"]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           *platform_args, "-d", str(into), f"{PACKAGE}=={pin.version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheel = into / pin.wheel
    if result.returncode != 0 or not wheel.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SlimError(f"could not download {pin.wheel} from PyPI: {last}")
    if sha256_file(wheel) != pin.wheel_sha256:
        raise SlimError(f"{pin.wheel} does not match the pinned sha256 {pin.wheel_sha256}")
    return wheel


def fetch(pin: Pin | None = None, wheel: Path | None = None) -> Path:
    """Unpack the pinned wheel into the cache (atomically) and return the verified tree."""
    pin = pin or load_pin()
    target = default_tree(pin)
    if target.is_dir():
        return verify_tree(target, pin)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        scratch = Path(scratch)
        if wheel is None:
            wheel = download_wheel(pin, scratch)
        elif sha256_file(wheel) != pin.wheel_sha256:
            raise SlimError(f"{wheel} does not match the pinned sha256 {pin.wheel_sha256}")
        unpacked = scratch / "tree"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(unpacked)
        verify_tree(unpacked, pin)
        os.replace(unpacked, target)
    return target.resolve()


def resolve_tree(upstream: Path | None) -> Path:
    """The tree to slim: a verified local one, or the cached download."""
    if upstream is not None:
        if not upstream.is_dir():
            raise SlimError(f"--upstream {upstream} is not a directory")
        return verify_tree(upstream)
    pin = load_pin()
    if not default_tree(pin).is_dir():
        raise SlimError(f"upstream {PACKAGE} {pin.version} is not fetched yet: run `slim fetch`")
    return verify_tree(default_tree(pin), pin)


