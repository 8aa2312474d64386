"""Function-level slimming on the real upstream tree with the committed recordings (slow: ~1 min
on 2 cores; skipped when upstream is not fetched). Speed is measured in benchmarks/apply_speed.py,
not here."""

from pathlib import Path

import pytest

from slim import upstream as up
from slim.apply import apply_plan
from slim.check import check_tree
from slim.flag_guards import flag_dests
from slim.plan import make_function_plan, package_files
from slim.policy import load_policy
from slim.recording import load_all
from slim.surface import read_inventory, removed_items

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_real_tree_result_checks(tmp_path):
    pin = up.load_pin()
    tree = up.default_tree(pin)
    plan = make_function_plan(tree, package_files(tree), load_all(REPO / "coverage_db", pin.version), load_policy())
    assert any(d.action == "delete" for d in plan.defs)
    out = tmp_path / "sglang"
    apply_plan(plan, tree, pin, out)
    inventory = read_inventory(REPO / "coverage_db", pin.version)["items"]  # as `slim check` reads the flags
    flags = (flag_dests(inventory), {row["id"] for row in removed_items()},
             {item["id"] for item in inventory if item["kind"] == "flag_value"})
    report = check_tree(out, tree, flags=flags)
    assert report.errors == [], report.errors[:10]
