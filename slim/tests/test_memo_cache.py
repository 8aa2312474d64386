"""`slim apply`'s rewrites, the file plan's import facts and the policy's def names come from the
on-disk memo (slim/memo_cache.py) when their inputs and their code are unchanged: same results,
nothing recomputed; a changed module or a torn entry is computed again."""

import ast
import importlib
from pathlib import Path

import pytest

from slim import apply_rewrite, import_facts, memo_cache
from slim.plan import make_function_plan, package_files
from slim.policy import Policy
from slim.tests.test_function_plan import PATTERNS, RAN, recording_of


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _count_rewrites(monkeypatch) -> list[str]:
    done: list[str] = []
    real = apply_rewrite._module_job

    def counting(job):
        done.append(job[1])
        return real(job)

    monkeypatch.setattr(apply_rewrite, "_module_job", counting)
    return done


def test_a_second_apply_reads_the_rewrites_the_first_one_made(wheel_tree, cache, monkeypatch):
    root, _ = wheel_tree
    plan = make_function_plan(root, package_files(root), [recording_of(root, {PATTERNS: RAN})], Policy())
    rewritten = _count_rewrites(monkeypatch)
    first = apply_rewrite.rewrite_modules(plan, root)
    assert PATTERNS in first[0] and PATTERNS in rewritten  # the plan deletes defs there
    rewritten.clear()
    assert apply_rewrite.rewrite_modules(plan, root) == first
    assert rewritten == []
    other = next(job for job in apply_rewrite._jobs(plan, root) if job[1] != PATTERNS)
    torn = apply_rewrite.REWRITES.folder / f"{apply_rewrite._job_key(root, other)}.pickle"
    torn.write_bytes(torn.read_bytes()[:10])
    (root / PATTERNS).write_text((root / PATTERNS).read_text() + "\n\ndef added():\n    return 1\n")
    again = apply_rewrite.rewrite_modules(plan, root)
    assert sorted(rewritten) == sorted([PATTERNS, other[1]])  # the changed module and the torn entry's
    assert b"def added" in again[0][PATTERNS]


def test_import_facts_are_read_back_unchanged(cache):
    tree = Path(import_facts.__file__).parents[1]
    path = "slim/plan_files.py"
    first = import_facts.import_facts(tree, path)
    assert "slim.import_facts" in first[0]
    assert list(import_facts.IMPORTS.folder.glob("*.pickle"))
    assert import_facts.import_facts(tree, path) == first


def _slim_imports(module) -> set[str]:
    """The slim modules `module` imports when it runs: `from slim.x import f` and `from slim import x`."""
    names = set()
    tree = ast.parse(Path(module.__file__).read_text())
    for guard in [n for n in ast.walk(tree) if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]:
        guard.body = []  # annotations only: never run
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slim"):
            names |= {_module_of(node.module, a.name) for a in node.names}
    return names


def _module_of(package: str, name: str) -> str:
    """`from package import name`: the submodule package.name if there is one, else package."""
    try:
        return importlib.import_module(f"{package}.{name}").__name__
    except ImportError:
        return package


@pytest.mark.parametrize("memo, start", [(apply_rewrite.REWRITES, "slim.apply_rewrite"),
                                         (import_facts.IMPORTS, "slim.import_facts")])
def test_the_key_covers_every_module_of_the_code(memo, start):
    """A result depends on its module and every slim module that imports (transitively), bar the memo
    machinery itself: a change to any of them must change the key, or a run would read old results."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _slim_imports(importlib.import_module(name))
    packages = {"slim", "slim.transforms"}  # empty __init__ files
    assert {m.__name__ for m in memo.code} == seen - packages - {"slim.memo_cache", "slim.upstream", "slim.errors"}
    assert memo_cache.Memo.key(b"a", b"bc") != memo_cache.Memo.key(b"ab", b"c")
