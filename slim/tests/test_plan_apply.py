
import json

import pytest

from slim.apply import PLAN_FILE, apply_plan, served_digest, tree_digest
from slim.diagnose import compute_plan, load_plan_json
from slim.errors import SlimError
from slim.plan import make_plan, package_files
from slim.policy import Policy
from slim.recording import load_all


@pytest.fixture
def plan_and_tree(wheel_tree, fixture_recording):
    root, pin = wheel_tree
    plan = make_plan(package_files(root), load_all(fixture_recording, "0.5.17"))
    return plan, root, pin


def test_never_imported_modules_are_removed(plan_and_tree):
    plan, _, _ = plan_and_tree
    removed = {d.path: str(d.reason) for d in plan.removed if not d.path.startswith("sglang/srt/reach/")}
    assert removed == {
        "sglang/srt/models/qwen.py": "never imported in any recording",
        "sglang/lang/interpreter.py": "never imported in any recording",
        "sglang/lang/__init__.py": "never imported in any recording",
        "sglang/lang/grammar.json": "data file of a removed package",
        "sglang/srt/layers/patterns.py": "never imported in any recording",
        "sglang/srt/layers/plugins.py": "never imported in any recording",
    }


def test_kept_files_say_why(plan_and_tree):
    plan, _, _ = plan_and_tree
    reasons = {d.path: str(d.reason) for d in plan.files if d.keep}
    assert reasons["sglang/srt/models/deepseek.py"] == "imported by 20261123T000000Z-ci"
    assert reasons["sglang/srt/layers/configs/E=256.json"] == "data file of a kept package"


def test_apply_writes_upstream_layout(plan_and_tree, tmp_path):
    plan, root, pin = plan_and_tree
    out = tmp_path / "sglang"
    assert apply_plan(plan, root, pin, out) == []
    assert (out / "python/sglang/srt/models/deepseek.py").read_bytes() == \
        (root / "sglang/srt/models/deepseek.py").read_bytes()
    assert not (out / "python/sglang/lang").exists()
    pyproject = (out / "python/pyproject.toml").read_text()
    assert '"torch==2.11.0"' in pyproject and "diffusers" not in pyproject
    report = (out / "REMOVED.md").read_text()
    assert "- `sglang/srt/models/qwen.py`: never imported in any recording" in report
    assert "- `20261123T000000Z-ci`" in report
    plan_data = load_plan_json(out / PLAN_FILE)  # the whole plan as data beside the tree: nothing parses REMOVED.md
    assert plan_data["recordings"] == ["20261123T000000Z-ci"] and plan_data == json.loads(plan.to_json())


def test_diagnosis_plan_counts_only_the_recordings_the_tree_was_planned_from(wheel_tree, fixture_recording,
                                                                            monkeypatch):
    """A run of a scenario the tree has not seen must not make its own misses look kept."""
    root, pin = wheel_tree
    monkeypatch.setattr("slim.upstream.load_pin", lambda: pin)  # the fixture wheel's own pin
    monkeypatch.setattr("slim.plan.load_policy", Policy)  # the project's entries name real upstream
    monkeypatch.setattr("slim.plan.executed_lines", lambda recordings: {})  # the fixture run traced no lines
    every = compute_plan(root, fixture_recording)
    none_of_them = compute_plan(root, fixture_recording, {"20261123T000000Z-elsewhere"})
    kept = {f["path"] for f in every["files"] if f["keep"]}
    assert "sglang/srt/models/deepseek.py" in kept
    assert "sglang/srt/models/deepseek.py" not in {f["path"] for f in none_of_them["files"] if f["keep"]}


def test_apply_is_deterministic_and_check_passes(plan_and_tree, tmp_path):
    plan, root, pin = plan_and_tree
    apply_plan(plan, root, pin, tmp_path / "a")
    apply_plan(plan, root, pin, tmp_path / "b")
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert apply_plan(plan, root, pin, tmp_path / "a", check=True) == []


def test_served_digest_names_the_code_and_not_the_plan_beside_it(plan_and_tree, tmp_path):
    """A new input that changes no code changes REMOVED.md: the tree digest, not the served one."""
    plan, root, pin = plan_and_tree
    apply_plan(plan, root, pin, tmp_path / "a")
    tree, served = tree_digest(tmp_path / "a"), served_digest(tmp_path / "a")
    with (tmp_path / "a" / "REMOVED.md").open("a") as removed:
        removed.write("- one more recording\n")
    assert tree_digest(tmp_path / "a") != tree and served_digest(tmp_path / "a") == served
    first = sorted((tmp_path / "a" / "python").rglob("*.py"))[0]
    first.write_text(first.read_text() + "\n")
    assert served_digest(tmp_path / "a") != served


def test_check_reports_edits_and_writes_nothing(plan_and_tree, tmp_path):
    plan, root, pin = plan_and_tree
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    (out / "python/sglang/srt/utils.py").write_text("edited by hand\n")
    (out / "python/sglang/stray.py").write_text("")
    before = tree_digest(out)
    diffs = apply_plan(plan, root, pin, out, check=True)
    assert diffs == ["unexpected: python/sglang/stray.py", "differs: python/sglang/srt/utils.py"]
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sglang", "upstream"]  # no staging left


def test_apply_replaces_an_old_tree_and_refuses_a_foreign_folder(plan_and_tree, tmp_path):
    plan, root, pin = plan_and_tree
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    (out / "python/sglang/stray.py").write_text("")
    apply_plan(plan, root, pin, out)
    assert not (out / "python/sglang/stray.py").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SlimError, match="not a slimmed tree"):
        apply_plan(plan, root, pin, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
