"""`slim check` on kept classes whose overrides the plan cut (slim/check_overrides.py), on a small tree shaped
like the UnifiedRadixCache crash: a cache built behind an environment switch lost its overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from slim.check import check_tree
from slim.check_overrides import REACHED_ONLY, REFUSED
from slim.policy import Policy
from slim.tests.test_check_members import write as write_tree

BASE = """from abc import ABC, abstractmethod


class BasePrefixCache(ABC):
    @abstractmethod
    def match_prefix(self, key):
        pass

    def reset(self):
        return None
"""
UPSTREAM_CACHE = """from .base import BasePrefixCache


class UnifiedRadixCache(BasePrefixCache):
    def match_prefix(self, key):
        return key
"""
SLIM_CACHE = "from .base import BasePrefixCache\n\n\nclass UnifiedRadixCache(BasePrefixCache):\n    pass\n"
REGISTRY = """import os

from .unified import UnifiedRadixCache


def create_cache(server_args):
    if {condition}:
        return UnifiedRadixCache()
    return None
"""
COMMON = {"sglang/__init__.py": "", "sglang/srt/__init__.py": "", "sglang/srt/mem_cache/__init__.py": "",
          "sglang/srt/mem_cache/base.py": BASE}
DESTS = {"enable_unified": "--enable-unified"}


def write(root: Path, files: dict[str, str]) -> None:
    write_tree(root, {**COMMON, **files})


@pytest.fixture
def check(tmp_path):
    """check(condition, slim cache source, refused ids, upstream cache source) -> the report of the slimmed tree."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')

    def run(condition: str, cache: str = SLIM_CACHE, refused: frozenset = frozenset(),
            upstream_cache: str = UPSTREAM_CACHE):
        registry = {"sglang/srt/mem_cache/registry.py": REGISTRY.format(condition=condition)}
        write(tree / "python", {**registry, "sglang/srt/mem_cache/unified.py": cache})
        write(upstream, {**registry, "sglang/srt/mem_cache/unified.py": upstream_cache})
        return check_tree(tree, upstream, Policy(), flags=(DESTS, set(refused), set()))

    return run


def test_a_class_built_behind_an_environment_switch_that_lost_its_override_fails(check):
    report = check('os.environ.get("SGLANG_ENABLE_UNIFIED_RADIX_TREE")')
    assert report.errors == ["sglang/srt/mem_cache/registry.py:8: builds UnifiedRadixCache, whose match_prefix the "
                             "plan cut when env:SGLANG_ENABLE_UNIFIED_RADIX_TREE, which the front door accepts (it "
                             "fails or runs its base's: keep them, or refuse what leads there)"]


def test_a_class_built_with_no_test_in_sight_fails_too(check):  # the condition may sit in a caller
    assert len(check("True").errors) == 1


def test_a_cut_override_of_a_concrete_base_method_fails_as_it_would_run_the_bases(check):
    """`reset` is concrete in the base: without the override the class builds and silently runs the
    base's version (a RoPE variant without its `_compute_inv_freq` computes the plain frequencies)."""
    with_reset = UPSTREAM_CACHE + "\n    def reset(self):\n        return 'own'\n"
    report = check("True", cache=UPSTREAM_CACHE, upstream_cache=with_reset)
    assert [e.split(", whose ")[1].split(" the plan")[0] for e in report.errors] == ["reset"]
    assert check("True", cache=with_reset, upstream_cache=with_reset).errors == []


def test_the_same_class_with_its_override_kept_passes(check):
    assert check('os.environ.get("SGLANG_ENABLE_UNIFIED_RADIX_TREE")', cache=UPSTREAM_CACHE).errors == []


def test_behind_an_accepted_flag_it_fails_and_behind_a_refused_one_it_is_allowed(check):
    accepted = check("server_args.enable_unified")
    assert [e.split(" when ")[1] for e in accepted.errors] == [
        "--enable-unified, which the front door accepts (it fails or runs its base's: keep them, or refuse what "
        "leads there)"]
    refused = check("server_args.enable_unified", refused=frozenset({"flag:--enable-unified"}))
    assert refused.errors == [] and refused.notes[REFUSED] == 1


def test_a_condition_computed_by_a_caller_is_allowed_only_as_the_table_says(check, monkeypatch):
    import slim.check_overrides as check_overrides

    monkeypatch.setattr(check_overrides, "REACHED_ONLY_BY", {"UnifiedRadixCache": (("flag:--enable-unified",), "why")})
    assert check("server_args.kt_config is not None").errors  # the item the claim rests on is accepted
    allowed = check("server_args.kt_config is not None", refused=frozenset({"flag:--enable-unified"}))
    assert allowed.errors == [] and allowed.notes[REACHED_ONLY] == 1



def test_a_cut_init_that_nothing_in_the_tree_replaces_fails(tmp_path):
    """Without its `__init__` (and none in its family) a class builds through object's, which takes no
    arguments: a TypeError, or an instance that never set its attributes."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    queue = "class DecodeQueue:\n    def __init__(self, size):\n        self.size = size\n"
    user = "from .queue import DecodeQueue\n\n\ndef start(size):\n    return DecodeQueue(size)\n"
    write(tree / "python", {"sglang/srt/mem_cache/queue.py": "class DecodeQueue:\n    pass\n",
                            "sglang/srt/mem_cache/user.py": user})
    write(upstream, {"sglang/srt/mem_cache/queue.py": queue, "sglang/srt/mem_cache/user.py": user})
    errors = check_tree(tree, upstream, Policy(), flags=(DESTS, set(), set())).errors
    assert [e.split(": ", 1)[1].split(" the plan")[0] for e in errors] == ["builds DecodeQueue, whose __init__"]
