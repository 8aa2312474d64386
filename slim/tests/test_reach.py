"""The plan on the fixture package: imported modules and defs that nothing that
ran reaches go; registries, re-exports and __all__ follow."""

import os
import subprocess
import sys

import pytest

from slim.apply import apply_plan
from slim.check import check_tree
from slim.errors import SlimError
from slim.plan import UNREACHED, make_function_plan, package_files
from slim.policy import Keep, OffSurface, Policy, Sampled, Whole
from slim.reach import (
    ERROR_HANDLER,
    HIERARCHY,
    NEVER_RUN,
    OFF_SURFACE_STUB,
    REFERENCED,
    REGISTERS,
    ROUTE,
    STUB,
)
from slim.reasons import Reason, Why
from slim.tests.test_function_plan import decisions, recording_of

DUNDER_KEPT = Reason(Why.IMPLICIT, "dunder")

REACH = "sglang/srt/reach"
RAN = {f"{REACH}/scan.py": ["load_all", "_App.__init__", "_App.exception_handler"],
       f"{REACH}/used.py": ["helper"], f"{REACH}/base.py": ["Base.run", "BuiltChild.__init__", "Record.__post_init__"],
       f"{REACH}/plugins/alpha.py": ["Alpha.run"], f"{REACH}/plugins/beta.py": [], f"{REACH}/dead.py": [],
       f"{REACH}/__init__.py": [], f"{REACH}/plugins/__init__.py": [], f"{REACH}/groups/__init__.py": [],
       f"{REACH}/groups/one.py": [], f"{REACH}/lazy.py": [], f"{REACH}/plugins/gamma.py": ["_make"],
       f"{REACH}/adapters/__init__.py": [], f"{REACH}/adapters/base.py": ["register", "resolve"],
       f"{REACH}/adapters/default.py": [], f"{REACH}/adapters/other.py": [], f"{REACH}/rare.py": []}


def planned(wheel_tree, **policy):
    root, pin = wheel_tree
    return make_function_plan(root, package_files(root), [recording_of(root, RAN)], Policy(**policy)), root, pin


@pytest.fixture
def reach_planned(wheel_tree):
    return planned(wheel_tree)


def files(plan):
    return {d.path: (d.keep, d.reason) for d in plan.files}


def test_imported_modules_nothing_reaches_are_removed(reach_planned):
    plan, _, _ = reach_planned
    got = files(plan)
    assert got[f"{REACH}/plugins/beta.py"] == (False, UNREACHED)  # only the registry scan imported it
    assert got[f"{REACH}/dead.py"] == (False, UNREACHED)  # only a re-export nothing uses named it
    assert got[f"{REACH}/plugins/gamma.py"] == (False, UNREACHED)  # what ran in it ran at its import
    assert got[f"{REACH}/plugins/alpha.py"][0] and got[f"{REACH}/used.py"][0]
    assert got[f"{REACH}/groups/one.py"][0]  # imported by a computed name its package spells out
    assert got[f"{REACH}/lazy.py"][0]  # named "module:attr" in a string of kept code


def test_defs_follow_what_ran(reach_planned):
    plan, _, _ = reach_planned
    assert decisions(plan, f"{REACH}/used.py")["helper_unused"] == ("delete", NEVER_RUN)
    base = decisions(plan, f"{REACH}/base.py")
    assert base["Child"][0] == "keep"  # named in KINDS (and without methods of its own it lives with Base)
    assert base["Other"] == ("keep", REFERENCED)  # in the KINDS registry: which entry a lookup takes is unknown
    assert base["Other.extra"] == ("delete", NEVER_RUN)  # but none of its own methods ran
    assert base["Shell"] == ("keep", REFERENCED) and base["Shell.__repr__"] == ("keep", DUNDER_KEPT)
    assert base["Shell.run"] == ("keep", HIERARCHY)  # the family's protocol, should Shell be put to work
    assert base["Shell.describe"] == ("delete", NEVER_RUN)
    assert decisions(plan, f"{REACH}/scan.py")["key_error_handler"] == ("keep", ERROR_HANDLER)  # never raised
    init = plan.edits[f"{REACH}/__init__.py"]
    assert init.imports == ["DeadThing"] and init.registry == ["DeadThing"]


def test_every_route_of_a_live_app_is_kept(reach_planned):
    """A route handler is named only by its decorator: no workload called it, but it is the surface."""
    assert decisions(reach_planned[0], f"{REACH}/scan.py")["flush_route"] == ("keep", ROUTE)


def test_a_class_never_instantiated_keeps_no_methods_off_the_surface(wheel_tree, reach_planned):
    """Off the surface only: inside it a flag no scenario set may build the class (a TypeError at
    start-up when its methods were cut)."""
    off = OffSurface(f"{REACH}/base.py", "another family's classes")
    base = decisions(planned(wheel_tree, off_surface=(off,))[0], f"{REACH}/base.py")
    assert decisions(reach_planned[0], f"{REACH}/base.py")["Unbuilt.__init__"] == ("keep", DUNDER_KEPT)
    assert base["Unbuilt"] == ("keep", REFERENCED)  # an isinstance check names it
    for member in ("__init__", "__repr__", "run"):  # no dunder or family protocol without an instance
        assert base[f"Unbuilt.{member}"] == ("delete", NEVER_RUN), member
    assert base["Unbuilt._legacy"] == ("stub", OFF_SURFACE_STUB)  # `legacy = _legacy` in its body: the name stays
    assert base["UnbuiltChild"][0] == "delete"  # nothing names it
    assert base["Built.run"] == ("stub", OFF_SURFACE_STUB)  # BuiltChild ran: Built's protocol stays (never run: a stub)
    assert base["Built.__init__"] == ("keep", DUNDER_KEPT)
    assert base["UnbuiltError.__init__"] == ("keep", DUNDER_KEPT)  # exceptions are not judged so
    assert base["Record.__post_init__"][1].kind is Why.RAN
    assert base["Record.describe"] == ("delete", NEVER_RUN)  # a dataclass's own method, never run
    on_surface = decisions(reach_planned[0], f"{REACH}/base.py")  # inside the surface a flag may build it
    assert on_surface["Unbuilt.run"] == ("keep", HIERARCHY)


def test_a_request_class_keeps_its_methods(wheel_tree):
    """Under [[sampled]] paths (request handling) what runs depends on each request: a class there
    keeps its methods though none ran (a stop_regex that matches builds one), whoever names it.
    Not when the class sits in an [[off_surface]] file: that feature is refused at its front door."""
    root, _ = wheel_tree
    request = Sampled(f"{REACH}/", "request handling")

    def unbuilt(**policy):
        plan = make_function_plan(root, package_files(root), [recording_of(root, RAN)], Policy(**policy))
        return decisions(plan, f"{REACH}/base.py")

    kept = unbuilt(sampled=(request,))
    assert kept["Unbuilt.__init__"] == ("keep", DUNDER_KEPT) and kept["Unbuilt.run"][0] == "keep"
    class_only = Sampled(f"{REACH}/base.py", "the class, not scan.py's load_all that names it")
    assert unbuilt(sampled=(class_only,))["Unbuilt.__init__"] == ("keep", DUNDER_KEPT)
    off = OffSurface(f"{REACH}/base.py", "a feature outside the surface")
    assert unbuilt(off_surface=(off,))["Unbuilt.__init__"] == ("delete", NEVER_RUN)
    assert unbuilt(sampled=(request,), off_surface=(off,))["Unbuilt.__init__"] == ("delete", NEVER_RUN)


def test_stubs_what_only_a_module_where_nothing_ran_holds(reach_planned, tmp_path):
    rare = decisions(reach_planned[0], f"{REACH}/rare.py")
    assert rare["rare_path"] == ("stub", STUB)  # scan.py names it on a branch no recording took
    assert rare["_format"] == ("delete", NEVER_RUN)  # only the stubbed body named it
    assert rare["RareOptions.__init__"] == ("keep", DUNDER_KEPT)  # never instantiated, but on the surface
    plan, root, pin = reach_planned
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    assert check_tree(out, root).errors == []
    text = (out / "python" / REACH / "rare.py").read_text()
    assert "def rare_path(data):\n    raise NotImplementedError(" in text and "import json" not in text
    env = {**os.environ, "PYTHONPATH": str(out / "python")}
    code = "from sglang.srt.reach.scan import load_all; print(load_all()[2])"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "['Base', 'Child']", run.stderr  # what ran still runs
    run = subprocess.run([sys.executable, "-c", code], env={**env, "SLIM_FIXTURE_RARE": "1"},
                         capture_output=True, text=True)
    assert "NotImplementedError: slim removed the body of rare_path" in run.stderr


def with_lines(recording, root, cold: dict[str, set[int]]):
    """The recording as line mode writes it: every line of the files it imported ran, but `cold`."""
    lines = [[rel, n, 1] for rel in RAN for n in range(1, len((root / rel).read_text().splitlines()) + 1)
             if n not in cold.get(rel, set())]
    return type(recording)(recording.path, {**recording.data, "lines": lines})


def test_a_plan_from_recordings_without_lines_is_refused(wheel_tree):
    """No lines table is no line evidence at all, not evidence that no line ran."""
    root, _ = wheel_tree
    recording = recording_of(root, RAN)
    without = type(recording)(recording.path, {k: v for k, v in recording.data.items() if k != "lines"})
    with pytest.raises(SlimError, match="line-mode recordings"):
        make_function_plan(root, package_files(root), [without], Policy())


def test_a_never_run_def_is_stubbed_only_off_the_surface(wheel_tree):
    """Inside the supported surface an unrecorded flag combination finds its code whole; under an
    [[off_surface]] path or symbol (a feature no scenario serves with) a def that never ran is stubbed."""
    root, _ = wheel_tree
    scan = (root / REACH / "scan.py").read_text().splitlines()
    rare_branch = {n for n, text in enumerate(scan, 1) if "SLIM_FIXTURE_RARE" in text or "rare_path(found)" in text}
    recording = with_lines(recording_of(root, RAN), root, {f"{REACH}/scan.py": rare_branch})
    off = OffSurface(f"{REACH}/used.py", "a debugging aid")
    plan = make_function_plan(root, package_files(root), [recording], Policy(off_surface=(off,)))
    used = decisions(plan, f"{REACH}/used.py")
    assert used["helper_on_error"] == ("stub", OFF_SURFACE_STUB) and used["helper"][0] == "keep"
    plan = make_function_plan(root, package_files(root), [recording], Policy())
    assert decisions(plan, f"{REACH}/used.py")["helper_on_error"] == ("keep", REFERENCED)
    by_symbol = OffSurface(f"{REACH}/used.py", "a debugging aid", qualname="helper_on_error")
    plan = make_function_plan(root, package_files(root), [recording], Policy(off_surface=(by_symbol,)))
    used = decisions(plan, f"{REACH}/used.py")
    assert used["helper_on_error"] == ("stub", OFF_SURFACE_STUB) and used["helper"][0] == "keep"


def test_an_off_surface_def_an_executed_line_names_but_never_ran_is_stubbed(wheel_tree):
    """Off the surface, an executed line that names a def is no reason to keep its body: the def
    never ran (`a and helper_on_error(x)` short-circuits), and its stub keeps the name for
    code that passes it around."""
    root, _ = wheel_tree
    scan = (root / REACH / "scan.py").read_text().splitlines()
    naming = {n for n, text in enumerate(scan, 1) if "helper_on_error" in text}
    assert naming, "the fixture names helper_on_error in scan.py"
    recording = with_lines(recording_of(root, RAN), root, {})  # every line ran, naming ones too
    off = OffSurface(f"{REACH}/used.py", "a debugging aid")
    surface = make_function_plan(root, package_files(root), [recording], Policy(off_surface=(off,)))
    assert decisions(surface, f"{REACH}/used.py")["helper_on_error"] == ("stub", OFF_SURFACE_STUB)


def test_what_ran_code_calls_on_a_branch_no_recording_took_stays_whole(wheel_tree, tmp_path):
    """A function that ran calls `rare_path(...)` and `RareOptions()` on a branch no recording took
    (a launch flag no scenario set): they keep their bodies and methods, and so
    does what they call in turn (`_format`, `lazy_label`), so the flag's branch runs on the slimmed
    tree. Under an [[off_surface]] path they are judged by what ran."""
    root, pin = wheel_tree
    scan = (root / REACH / "scan.py").read_text().splitlines()
    rare_branch = {n for n, text in enumerate(scan, 1) if "SLIM_FIXTURE_RARE" in text or "rare_path(found)" in text}
    recording = with_lines(recording_of(root, RAN), root, {f"{REACH}/scan.py": rare_branch})
    plan = make_function_plan(root, package_files(root), [recording], Policy())
    rare = decisions(plan, f"{REACH}/rare.py")
    assert rare["rare_path"] == ("keep", REFERENCED) and rare["_format"] == ("keep", REFERENCED)
    assert rare["RareOptions.__init__"][0] == "keep" and rare["rare_summary"][0] == "delete"
    assert decisions(plan, f"{REACH}/lazy.py")["lazy_label"][0] == "keep"
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    env = {**os.environ, "PYTHONPATH": str(out / "python"), "SLIM_FIXTURE_RARE": "1"}
    code = "from sglang.srt.reach.scan import load_all; print(load_all()[1])"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "level 1", run.stderr
    off = OffSurface(f"{REACH}/rare.py", "a feature outside the surface")
    plan = make_function_plan(root, package_files(root), [recording], Policy(off_surface=(off,)))
    rare = decisions(plan, f"{REACH}/rare.py")
    assert rare["rare_path"][0] == "stub" and rare["RareOptions.__init__"] == ("delete", NEVER_RUN)


def test_whole_paths_and_what_policy_code_calls_are_not_stubbed(wheel_tree):
    whole = Whole(f"{REACH}/rare.py", "needs 2 GPUs", "r1_fp8_tp2")
    rare = decisions(planned(wheel_tree, wholes=(whole,))[0], f"{REACH}/rare.py")
    assert rare["rare_path"] == ("keep", REFERENCED) and rare["_format"] == ("keep", REFERENCED)
    assert rare["RareOptions.__init__"] == ("keep", DUNDER_KEPT)
    keep = Keep(f"{REACH}/lazy.py", None, "sm100 only", "dsv3_fp8_b200")  # lazy.py's fn calls rare_path
    plan = planned(wheel_tree, keeps=(keep,))[0]
    rare = decisions(plan, f"{REACH}/rare.py")
    assert rare["rare_path"] == ("keep", REFERENCED) and rare["_format"] == ("keep", REFERENCED)
    # through a def that never ran in a module where something ran (used.py) into one where nothing did
    assert decisions(plan, f"{REACH}/used.py")["helper_elsewhere"] == ("keep", REFERENCED)
    assert rare["rare_summary"] == ("keep", REFERENCED)
    assert decisions(planned(wheel_tree)[0], f"{REACH}/rare.py")["rare_summary"] == ("delete", NEVER_RUN)


def test_what_whole_paths_call_in_modules_where_nothing_ran_stays_whole(wheel_tree):
    whole = Whole(f"{REACH}/rare.py", "needs 2 GPUs", "r1_fp8_tp2")  # rare_path calls lazy.lazy_label
    plan = planned(wheel_tree, wholes=(whole,))[0]
    assert decisions(plan, f"{REACH}/lazy.py")["lazy_label"] == ("keep", REFERENCED)  # whole, not a stub
    assert decisions(planned(wheel_tree)[0], f"{REACH}/lazy.py")["lazy_label"][0] != "keep"


def test_modules_imported_for_their_registrations_stay(reach_planned):
    plan, _, _ = reach_planned
    got = files(plan)
    assert got[f"{REACH}/adapters/default.py"][0] and got[f"{REACH}/adapters/other.py"][0]
    assert decisions(plan, f"{REACH}/adapters/default.py")["DefaultAdapter"] == ("keep", REGISTERS)
    assert decisions(plan, f"{REACH}/adapters/other.py")["unrelated"] == ("delete", NEVER_RUN)
    assert f"{REACH}/adapters/__init__.py" not in plan.edits  # its side-effect imports stay


def test_reach_tree_checks_and_the_registry_scan_still_runs(reach_planned, tmp_path):
    plan, root, pin = reach_planned
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    assert check_tree(out, root).errors == []
    init = (out / "python" / REACH / "__init__.py").read_text()
    assert "DeadThing" not in init and '__all__ = ["used_helper"]' in init
    assert "KINDS = [Base, Child, Other]" in (out / "python" / REACH / "base.py").read_text()
    code = ("from sglang.srt.reach.scan import load_all; found, one, runs, adapter = load_all(); "
            "print(sorted(found), one, runs, adapter)")
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(out / "python")},
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['Alpha', 'Base'] 1 ['Base', 'Child'] DefaultAdapter"  # beta and gamma are gone


def test_whole_paths_keep_every_registration_of_their_kept_modules(wheel_tree):
    whole = Whole(f"{REACH}/lazy.py", "needs an sm100 GPU", "dsv3_fp8_tp1_trtllm_mla")
    assert decisions(planned(wheel_tree, wholes=(whole,))[0], f"{REACH}/lazy.py")["LazyAdapter"] == \
        ("keep", REGISTERS)  # `@register_fused_func("none", "flashinfer_trtllm")`: a flag value looks it up
    assert decisions(planned(wheel_tree)[0], f"{REACH}/lazy.py")["LazyAdapter"][0] == "delete"
