"""Function-level slimming on the real upstream tree with the committed recordings (slow: ~1 min
on 2 cores; skipped when upstream is not fetched). Speed is measured in benchmarks/apply_speed.py,
not here."""

from pathlib import Path

import pytest

from slim import upstream as up
from slim.apply import apply_plan
from slim.check import check_tree
from slim.plan import make_function_plan, package_files
from slim.policy import load_policy
from slim.recording import load_all

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_real_tree_result_checks(tmp_path):
    pin = up.load_pin()
    tree = up.default_tree(pin)
    plan = make_function_plan(tree, package_files(tree), load_all(REPO / "coverage_db", pin.version), load_policy())
    assert any(d.action == "delete" for d in plan.defs)
    out = tmp_path / "sglang"
    apply_plan(plan, tree, pin, out)
    report = check_tree(out, tree)
    assert report.errors == [], report.errors[:10]
