"""The plan's module indexes come from the on-disk cache when the module and the indexer are
unchanged, and are made anew (and re-cached) otherwise."""

import ast
import importlib
from pathlib import Path

import pytest

from slim import defs, index_cache, plan
from tracer.tests.conftest import FIXTURE_TREE

MODULES = ["sglang/srt/layers/patterns.py", "sglang/srt/models/registry.py"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIM_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _count_indexing(monkeypatch) -> list[str]:
    indexed: list[str] = []
    real = defs.index_module

    def counting(path, source):
        indexed.append(path)
        return real(path, source)

    monkeypatch.setattr(defs, "index_module", counting)
    return indexed


def test_a_second_plan_reads_the_indexes_the_first_one_made(cache, monkeypatch):
    first = plan._index_all(FIXTURE_TREE, MODULES)
    indexed = _count_indexing(monkeypatch)
    again = plan._index_all(FIXTURE_TREE, MODULES)
    assert indexed == []
    assert again == first
    assert again == [defs.index_module(m, (FIXTURE_TREE / m).read_bytes()) for m in MODULES]


def test_a_changed_module_or_a_torn_entry_is_indexed_again(cache, monkeypatch):
    tree = cache / "tree"
    for module in MODULES:
        (tree / module).parent.mkdir(parents=True, exist_ok=True)
        (tree / module).write_bytes((FIXTURE_TREE / module).read_bytes())
    plan._index_all(tree, MODULES)
    changed, torn = MODULES
    (tree / changed).write_text((tree / changed).read_text() + "\n\ndef added():\n    return 1\n")
    entry = index_cache.entry_key(torn, (tree / torn).read_bytes())
    path = index_cache.cache_dir() / f"{entry}.pickle"
    path.write_bytes(path.read_bytes()[:20])
    indexed = _count_indexing(monkeypatch)
    fresh = plan._index_all(tree, MODULES)
    assert sorted(indexed) == sorted(MODULES)
    assert "added" in {d.qualname for d in fresh[0].defs}
    assert index_cache.load(entry) == fresh[1]  # rewritten whole


def test_the_entries_of_another_indexer_version_go(cache):
    stale = index_cache.cache_dir().parent / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "old.pickle").write_bytes(b"x")
    plan._index_all(FIXTURE_TREE, MODULES)
    assert not stale.exists()
    assert len(list(index_cache.cache_dir().glob("*.pickle"))) == len(MODULES)


def _slim_imports(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("slim")}


def test_the_key_covers_every_module_of_the_indexer():
    """An index depends on defs.py and every slim module it imports (transitively): a change to any
    of them must change the key, or a plan would read indexes the old code made."""
    seen, todo = set(), ["slim.defs"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _slim_imports(importlib.import_module(name))
    assert seen == {m.__name__ for m in index_cache.INDEXER_MODULES}
