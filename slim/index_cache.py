"""Module indexes (`defs.index_module`) kept on disk between plans.

Indexing the ~1,600 kept upstream modules is most of a plan's time, and the upstream tree is
pinned: after one plan, the next reads its indexes instead of parsing the tree again. An entry is
keyed by everything an index depends on: the indexer's source (`slim/defs.py` and the slim
modules it imports, INDEXER_MODULES), the Python version (its `ast`), the module's path (relative
imports resolve from it) and bytes, and whether per-line uses were asked for. A torn or unreadable entry
is a miss: the module is indexed again and the entry rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import sys
from pathlib import Path

from slim import defs, implicit, module_names, platform_names, syntax
from slim.upstream import cache_root

# The indexer: defs.py and what it imports (a change to any of them changes every index).
INDEXER_MODULES = (defs, implicit, module_names, platform_names, syntax)


@functools.cache
def _indexer_digest() -> str:
    digest = hashlib.sha256()
    for module in INDEXER_MODULES:
        digest.update(Path(module.__file__).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return cache_root() / "index" / _indexer_digest()


def entry_key(path: str, source: bytes) -> str:
    return hashlib.sha256(f"{path}\0".encode() + source).hexdigest()


def load(key: str):
    """The cached index, or None (absent, torn, or from an incompatible pickle)."""
    try:
        return pickle.loads((cache_dir() / f"{key}.pickle").read_bytes())
    except Exception:  # noqa: BLE001 - any unreadable entry is a miss, never an error
        return None


@functools.cache
def _prepared(here: Path) -> Path:
    """The cache folder, made once per process; the folders of other indexer versions go (each
    holds ~32 MB that nothing will read again)."""
    here.mkdir(parents=True, exist_ok=True)
    for other in here.parent.iterdir():
        if other != here and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    return here


def store(key: str, pickled: bytes) -> None:
    """Write one pickled index; atomic (a rename), so concurrent plans never read half a file."""
    try:
        target = _prepared(cache_dir()) / f"{key}.pickle"
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(pickled)
        os.replace(partial, target)
    except OSError:  # a read-only or full cache only costs the next plan time
        pass
