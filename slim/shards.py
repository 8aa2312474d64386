"""Read the per-process shards a traced run left behind and merge them.

Runs outside the traced processes (in `slim record`), so it may use anything.
A shard that is truncated or was not written by this collector is reported by
name instead of silently dropping coverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slim.datafile import read_gzip_json
from slim.errors import SlimError
from tracer.collector import SHARD_SCHEMA

SHARD_KEYS = ("pid", "ppid", "host", "argv", "functions", "modules")


@dataclass(frozen=True)
class Shard:
    path: Path
    pid: int
    ppid: int
    host: str
    argv: list[str]
    functions: list[tuple[str, str, int]]
    modules: dict[str, str | None]
    # Optional: shards written before these keys existed lack them.
    shared_libs: tuple[str, ...] = ()
    opened_files: tuple[str, ...] = ()
    lines: tuple[tuple[str, int], ...] | None = None  # None: not a line-mode shard


def read_shard(path: Path) -> Shard:
    """Load one shard or raise a one-line SlimError that names it."""
    data = read_gzip_json(path, "shard", "a slim shard", SHARD_SCHEMA, SHARD_KEYS)
    try:
        functions = [(str(f), str(q), int(line)) for f, q, line in data["functions"]]
        lines = None if data.get("lines") is None else tuple((str(f), int(n)) for f, n in data["lines"])
        shared_libs = tuple(str(p) for p in data.get("shared_libs", ()))
        opened_files = tuple(str(p) for p in data.get("opened_files", ()))
    except (TypeError, ValueError) as exc:
        raise SlimError(f"shard {path} has a malformed table ({exc})") from None
    return Shard(path, data["pid"], data["ppid"], data["host"], data["argv"], functions, data["modules"],
                 shared_libs, opened_files, lines)


def read_shards(trace_dir: Path) -> list[Shard]:
    """Every finished shard under trace_dir (one folder per host), oldest process first."""
    paths = sorted(trace_dir.glob("*/*.json.gz"))
    if not paths:
        raise SlimError(f"no shards under {trace_dir}: was the tracer on (SLIM_TRACE_DIR, PYTHONPATH)?")
    return sorted((read_shard(p) for p in paths), key=lambda s: s.path.name)
