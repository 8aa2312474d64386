"""Pure per-file results kept on disk between runs of `slim plan` / `slim apply`.

The upstream tree is pinned and most of a run's time goes to re-deriving the same facts from the
same files (libcst rewrites of unchanged modules, their imports, ...). A Memo names one such pure
function; an entry is keyed by everything its result depends on: the source of the slim modules
that compute it (`code`), the Python version, library versions (`extra`), and the caller's inputs
(a file's path and bytes, the plan's edits for it). Like slim/index_cache.py: a torn or unreadable
entry is a miss, writes are atomic, and a memo's folders from other code versions are removed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

from slim.upstream import cache_root


class Memo:
    def __init__(self, name: str, code: Iterable[ModuleType], extra: str = "") -> None:
        self.name, self.code, self.extra = name, tuple(code), extra

    @functools.cached_property
    def code_digest(self) -> str:
        digest = hashlib.sha256(self.extra.encode() + sys.version.encode())
        for module in self.code:
            digest.update(Path(module.__file__).read_bytes())
        return digest.hexdigest()[:16]

    @property
    def folder(self) -> Path:  # the cache root is read each time: tests point SLIM_CACHE elsewhere
        return cache_root() / self.name / self.code_digest

    @staticmethod
    def key(*parts: bytes) -> str:
        digest = hashlib.sha256()
        for part in parts:  # length-prefixed: no two part lists give the same stream
            digest.update(len(part).to_bytes(8, "little") + part)
        return digest.hexdigest()

    def load(self, key: str):
        """The stored result, or None (absent, torn, or from an incompatible pickle)."""
        try:
            return pickle.loads((self.folder / f"{key}.pickle").read_bytes())
        except Exception:  # noqa: BLE001 - any unreadable entry is a miss, never an error
            return None

    def store(self, key: str, value) -> None:
        """Atomic (a rename), so concurrent runs never read half a file; a read-only or full
        cache only costs the next run time."""
        try:
            target = _prepared(self.folder) / f"{key}.pickle"
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(partial, target)
        except OSError:
            pass

    def get(self, key: str, compute: Callable[[], object]):
        """The stored result for `key`, else compute() (stored for next time). None is never stored."""
        value = self.load(key)
        if value is None:
            value = compute()
            self.store(key, value)
        return value


@functools.cache
def _prepared(here: Path) -> Path:
    """The memo's folder, made once per process; its folders of other code versions go."""
    here.mkdir(parents=True, exist_ok=True)
    for other in here.parent.iterdir():
        if other != here and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    return here
