"""Leave-one-out on the fixture package: what a plan made without a run would have cut from it."""

from slim.holdout import class_bodies, import_time, missed_by
from slim.plan import make_function_plan, package_files
from slim.policy import Policy
from slim.tests.test_function_plan import recording_of
from slim.tests.test_reach import RAN, REACH

OTHER = {**RAN, f"{REACH}/used.py": ["helper", "helper_unused"], f"{REACH}/plugins/beta.py": ["Beta.run"]}


def test_a_plan_without_the_run_misses_what_only_it_ran(wheel_tree):
    root, _ = wheel_tree
    held_out = recording_of(root, OTHER)
    plan = make_function_plan(root, package_files(root), [recording_of(root, RAN)], Policy())
    classes, at_import = class_bodies(root, sorted(OTHER)), import_time(root, sorted(OTHER))
    missed = missed_by(plan, held_out, classes, at_import)
    assert missed.functions == [f"{REACH}/plugins/beta.py::Beta.run", f"{REACH}/used.py::helper_unused"]
    assert missed.modules == [f"{REACH}/plugins/beta.py"]
    # Class bodies, <module> and gamma's import-time _make (gamma is deleted) are left out.
    assert missed.functions_run == 12 and missed.modules_used == 6
    assert len(missed_by(plan, held_out, classes).functions) == 3  # without import_time, _make counts
    assert missed_by(plan, recording_of(root, RAN), classes, at_import).functions == []  # a run the plan saw


def test_a_stub_the_held_out_run_needed_is_a_miss(wheel_tree):
    root, _ = wheel_tree
    rare = {**RAN, f"{REACH}/rare.py": ["rare_path", "_format"]}  # a run that took the rare branch
    plan = make_function_plan(root, package_files(root), [recording_of(root, RAN)], Policy())
    files = sorted(rare)
    missed = missed_by(plan, recording_of(root, rare), class_bodies(root, files), import_time(root, files))
    assert missed.functions == [f"{REACH}/rare.py::_format", f"{REACH}/rare.py::rare_path"]  # deleted, stubbed
