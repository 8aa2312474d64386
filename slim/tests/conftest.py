import base64
import hashlib
import shutil
from pathlib import Path

import pytest

from slim.recording import merge_shards, write_recording
from slim.shards import read_shards
from slim.upstream import Pin
from tracer.tests.conftest import FIXTURE_TREE, traced_extra_run, traced_run  # noqa: F401  (shared session fixtures)

VERSION = "0.5.17"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel_tree(root: Path, extra: dict[str, str] | None = None) -> Pin:
    """Copy the fixture package, and the `extra` files ({path: text}), into `root` as an unpacked wheel
    (RECORD + METADATA); pin it."""
    shutil.copytree(FIXTURE_TREE / "sglang", root / "sglang", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    dist = root / f"sglang-{VERSION}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: sglang\nVersion: {VERSION}\nRequires-Python: >=3.10\n"
        "Requires-Dist: torch==2.11.0\nRequires-Dist: diffusers; extra == \"diffusion\"\n\n"
    )
    rows = [f"{p.relative_to(root).as_posix()},sha256={_digest(p.read_bytes())},{p.stat().st_size}"
            for p in sorted(root.rglob("*")) if p.is_file()]
    record = dist / "RECORD"
    record.write_text("\n".join(rows + [f"{dist.name}/RECORD,,"]) + "\n")
    return Pin(VERSION, "sglang-fixture.whl", "0" * 64, hashlib.sha256(record.read_bytes()).hexdigest())


@pytest.fixture
def wheel_tree(tmp_path):
    root = tmp_path / "upstream"
    return root, make_wheel_tree(root)


@pytest.fixture(scope="session")
def fixture_recording(traced_run, tmp_path_factory):  # noqa: F811
    """A recording made from the real traced fixture run."""
    db = tmp_path_factory.mktemp("db")
    coverage = merge_shards(read_shards(traced_run), str(FIXTURE_TREE))
    recording = {"scenario": "fixture", "upstream": {"version": VERSION}, "environment": {}, "command": [],
                 "outputs": [], **coverage}
    write_recording(recording, db / "fixture" / "20261123T000000Z-ci.json.gz")
    return db
