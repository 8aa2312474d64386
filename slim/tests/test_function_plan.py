"""Function-level plan on the fixture package, with a recording of known run functions."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slim.apply import apply_plan, tree_digest
from slim.check import check_tree
from slim.defs import collect_defs, index_module
from slim.plan import make_function_plan, package_files
from slim.policy import Keep, Policy, load_policy
from slim.reach import HIERARCHY, NEVER_RUN, OVERRIDE, REFERENCED
from slim.reasons import Reason, Why, policy_kept
from slim.recording import Recording

PATTERNS = "sglang/srt/layers/patterns.py"
PLUGINS = "sglang/srt/layers/plugins.py"
RAN = ["Base.run", "Triton.apply", "dispatch"]


def recording_of(root: Path, ran: dict[str, list[str]]) -> Recording:
    """A recording that imported the given files and ran the given qualnames in them, in line mode:
    every line of those files ran (tests that need a branch no recording took drop its lines)."""
    modules, functions, executed = [], [], []
    for rel, qualnames in ran.items():
        modules.append([rel.removesuffix(".py").replace("/", "."), rel, 1])
        source = (root / rel).read_bytes()
        lines = {d.qualname: d.line for d in collect_defs(ast.parse(source))}
        functions += [[rel, "<module>", 1, 1]] + [[rel, q, lines[q], 1] for q in qualnames]
        executed += [[rel, n, 1] for n in range(1, len(source.splitlines()) + 1)]
    for init in ("sglang/__init__.py", "sglang/srt/__init__.py", "sglang/srt/layers/__init__.py"):
        modules.append([init.removesuffix("/__init__.py").replace("/", "."), init, 1])
    return Recording(Path("20261123T000000Z-fixture.json.gz"), {"scenario": "fixture", "modules": modules,
                                                                "functions": functions, "lines": executed})


@pytest.fixture
def planned(wheel_tree):
    root, pin = wheel_tree
    recording = recording_of(root, {PATTERNS: RAN, "sglang/srt/utils.py": ["is_hip"]})
    return make_function_plan(root, package_files(root), [recording], Policy()), root, pin


def decisions(plan, file=PATTERNS):
    return {d.qualname: (d.action, d.reason) for d in plan.defs if d.file == file}


def test_decisions_and_reasons(planned):
    plan, _, _ = planned
    got = decisions(plan)
    assert got["Triton.apply"] == ("keep", Reason(Why.RAN, "20261123T000000Z-fixture"))
    assert got["Base.apply"] == ("keep", Reason(Why.IMPLICIT, "@abc.abstractmethod"))
    assert got["Triton.unused_helper"] == ("delete", NEVER_RUN)
    assert got["called_by_name"] == ("keep", REFERENCED)  # never run, but dispatch (kept) names it
    assert got["Aiter"] == ("keep", REFERENCED)  # in the BACKENDS registry: which entry a lookup takes is unknown
    assert got["Aiter.apply"] == ("keep", HIERARCHY)  # Base.run dispatches to it
    assert got["Config"][0] == "delete"  # a dataclass nobody uses
    assert plan.edits[PATTERNS].registry == []  # a registry of kept code keeps its entries
    assert plan.edits[PATTERNS].constants == ["_is_hip"]


def test_overriding_method_is_kept_when_the_name_ran_in_the_hierarchy(wheel_tree):
    root, _ = wheel_tree
    recording = recording_of(root, {PATTERNS: ["Base.run", "Aiter.apply", "Triton.unused_helper", "dispatch"]})
    plan = make_function_plan(root, package_files(root), [recording], Policy())
    assert decisions(plan)["Aiter"][0] == "keep"
    assert decisions(plan)["Triton.apply"] == ("keep", HIERARCHY)


def test_policy_keeps_a_def_and_reports_it(wheel_tree):
    root, _ = wheel_tree
    policy = Policy((Keep(PATTERNS, "Aiter", "ROCm-only backend", "rocm_mi300"),))
    plan = make_function_plan(root, package_files(root), [recording_of(root, {PATTERNS: RAN})], policy)
    assert decisions(plan)["Aiter.apply"] == ("keep", policy_kept("ROCm-only backend", "rocm_mi300"))
    assert json.loads(plan.to_json())["policy"][0]["scenario"] == "rocm_mi300"


def test_apply_writes_the_slimmed_module_and_check_passes(planned, tmp_path):
    plan, root, pin = planned
    out = tmp_path / "sglang"
    assert apply_plan(plan, root, pin, out) == []
    text = (out / "python" / PATTERNS).read_text()
    assert "class Config" not in text and "unused_helper" not in text and "_is_hip:" not in text
    assert 'BACKENDS = {"triton": Triton, "aiter": Aiter}' in text and "class Aiter" in text
    assert "def called_by_name(x):\n    a = x\n    b = a + 1\n    return b\n" in text  # kept whole
    assert "import json" not in text  # only the deleted helper used it
    assert "class Base(abc.ABC)" in text and "def run" in text
    report = (out / "REMOVED.md").read_text()
    assert "## Inside kept modules" in report and "Kept by slim/policy.toml" in report
    assert check_tree(out, root).errors == []


@pytest.fixture
def plugins_planned(wheel_tree):
    root, pin = wheel_tree
    recording = recording_of(root, {PLUGINS: ["make_plugin", "convert"], "sglang/srt/utils.py": ["is_hip"]})
    return make_function_plan(root, package_files(root), [recording], Policy()), root, pin


def test_never_run_implementations_of_abstract_methods_stay(plugins_planned, tmp_path):
    """The GPU failure (dumper.py's _SGLangPlugin): dump() never ran and was the only caller of
    SGLangPlugin's implementations of Plugin's abstract methods; deleting them with it left
    SGLangPlugin abstract, so make_plugin() raised TypeError."""
    plan, root, pin = plugins_planned
    got = decisions(plan, PLUGINS)
    assert got["dump"] == ("delete", NEVER_RUN)
    for name in ("collect_parallel_info", "convert_value"):
        assert got[f"SGLangPlugin.{name}"] == ("keep", OVERRIDE)
    assert got["SGLangPlugin.unused_extra"] == ("delete", NEVER_RUN)  # no kept method has its name
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    assert check_tree(out, root).errors == []
    run = subprocess.run([sys.executable, "-c", "from sglang.srt.layers.plugins import make_plugin; make_plugin()"],
                         env={**os.environ, "PYTHONPATH": str(out / "python")}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_names_used_only_on_folded_platform_branches_keep_nothing(plugins_planned, tmp_path):
    plan, root, pin = plugins_planned
    got = decisions(plan, PLUGINS)
    assert got["hip_convert"] == ("delete", NEVER_RUN)  # named only under `if _is_hip:`, folded away
    assert got["strict_convert"] == ("keep", REFERENCED)  # named under `if not _is_hip:`, which stays
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    text = (out / "python" / PLUGINS).read_text()
    assert "hip_convert" not in text and "_is_hip:" not in text and "def strict_convert" in text
    assert check_tree(out, root).errors == []


def test_index_leaves_out_references_on_folded_platform_branches():
    source = textwrap.dedent("""\
        from sglang.srt.utils import is_hip
        _is_hip = is_hip()
        f = hip_a if _is_hip else cuda_a
        if _is_hip:
            g = hip_b
        elif not is_hip():
            g = cuda_b
        if other:
            h = kept_c
        """).encode()
    refs = index_module("sglang/srt/x.py", source).refs
    assert refs["hip_a"] == refs["hip_b"] == 0
    assert refs["cuda_a"] == refs["cuda_b"] == refs["kept_c"] == 1


def test_overrides_of_standard_library_methods_are_implicit():
    # Deleted, `filter` would not fail: logging would silently run Filter.filter instead.
    source = textwrap.dedent("""\
        import logging
        from pickle import Unpickler as U

        class Quiet(logging.Filter):
            def filter(self, record):
                return False
            def helper(self):
                return 1

        class Safe(U):
            def find_class(self, module, name):
                raise ValueError(name)
        """)
    implicit = {d.qualname: d.implicit for d in collect_defs(ast.parse(source))}
    assert implicit["Quiet.filter"] == "overrides logging.Filter.filter: the library calls it by name"
    assert implicit["Safe.find_class"] == "overrides pickle.Unpickler.find_class: the library calls it by name"
    assert implicit["Quiet.helper"] is None


def test_index_records_call_sites_and_string_registrations():
    source = textwrap.dedent("""\
        register_backend("file", "sglang.srt.store", "FileStore")
        other("NotARegistration")

        def pick(flag):
            if flag:
                return Sleeper(1).nap()
            return helper()
        """).encode()
    index = index_module("sglang/srt/x.py", source)
    assert index.string_registrations == [(1, "file"), (1, "sglang"), (1, "srt"), (1, "store"), (1, "FileStore")]
    assert index.defs[0].calls == [(6, "Sleeper"), (6, "nap"), (7, "helper")]


def test_apply_is_deterministic(planned, tmp_path):
    plan, root, pin = planned
    apply_plan(plan, root, pin, tmp_path / "a")
    apply_plan(plan, root, pin, tmp_path / "b")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_check_flags_a_reference_to_a_deleted_symbol(planned, tmp_path):
    plan, root, pin = planned
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    (out / "python/sglang/srt/user.py").write_text(
        "from sglang.srt.layers.patterns import Config\nimport sglang.srt.layers.patterns as p\np.Config\n"
        "import nothere_pkg\n")
    errors = check_tree(out, root).errors
    assert any("import Config" in e and "Config was deleted by slim" in e for e in errors)
    assert any("patterns.Config was deleted by slim" in e for e in errors)
    (out / "python/sglang/srt/user.py").write_text("def f(:\n")
    assert any("does not compile" in e for e in check_tree(out, root).errors)


def test_check_follows_star_imports_and_reads_if_tests(planned, tmp_path):
    """`from sglang.srt import hub; if hub.FLAG:` where hub re-exports FLAG through `from .impl import *`
    and impl's import of FLAG is gone: upstream binds hub.FLAG, the slimmed tree does not."""
    plan, root, pin = planned
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    for tree, impl in ((root, "from sglang.srt.utils import is_hip as FLAG\n"), (out / "python", "X = 1\n")):
        (tree / "sglang/srt/hub").mkdir()
        (tree / "sglang/srt/hub/__init__.py").write_text("from .impl import *\n")
        (tree / "sglang/srt/hub/impl.py").write_text(impl)
    (out / "python/sglang/srt/user.py").write_text("from sglang.srt import hub\nif hub.FLAG:\n    pass\n")
    assert any("hub.FLAG was deleted by slim" in e for e in check_tree(out, root).errors)
    (out / "python/sglang/srt/hub/impl.py").write_text(impl.replace("X = 1", "FLAG = 1"))
    assert check_tree(out, root).errors == []


def test_committed_policy_is_valid():
    policy = load_policy()
    assert policy.keeps and all(k.reason and k.scenario for k in policy.keeps)
    assert policy.sampled and all(s.reason for s in policy.sampled)
