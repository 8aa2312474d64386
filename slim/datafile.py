"""slim's own gzip JSON files (shards, recordings, bundle manifests): one writer, and one reader
that turns their defects into one-line errors."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path

from slim.errors import SlimError


def read_gzip_json(path: Path, kind: str, unreadable: str, schema: str, required: tuple[str, ...]) -> dict:
    """The JSON object at `path`, checked for its schema and keys; any defect is a one-line
    SlimError naming the file (`kind`: 'shard', 'recording'; `unreadable`: what it is not)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SlimError(f"{kind} {path} is truncated or not {unreadable} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise SlimError(f"{kind} {path} has schema {found!r}, expected {schema!r}")
    missing = [key for key in required if key not in data]
    if missing:
        raise SlimError(f"{kind} {path} lacks {', '.join(missing)}")
    return data


def write_gzip_json(data: dict, path: Path) -> Path:
    """Atomically write `data` as gzip JSON: stable key order and no timestamp in the gzip header,
    so equal data gives equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, sort_keys=True, indent=0).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(payload)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are shared data
    os.replace(tmp, path)
    return path
