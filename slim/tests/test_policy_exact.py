"""Policy entries name exactly what they mean: files, folders/ or file::qualname, never a pattern;
each names something upstream; and the plan's JSON says which entry decided each def."""

import ast
import json

import pytest

from slim import upstream as up
from slim.errors import SlimError
from slim.plan import make_function_plan, package_files
from slim.policy import OffSurface, Policy, definition_counts, entry_paths, load_policy, stale_entries
from slim.reach import OFF_SURFACE_STUB
from slim.tests.test_function_plan import recording_of
from slim.tests.test_reach import RAN, REACH, with_lines

UPSTREAM = up.default_tree(up.load_pin())
needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream sglang not fetched")


def nested_qualnames(source: bytes, qualname: str) -> set[str]:
    """The def named `qualname` and every def inside it, found by walking down the syntax tree
    name by name (independent of OffSurface.holds)."""
    found: set[str] = set()

    def walk(node, prefix: str, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                hit = inside or name == qualname
                if hit:
                    found.add(name)
                walk(child, name + ".", hit)
            else:
                walk(child, prefix, inside)

    walk(ast.parse(source), "", False)
    return found


@needs_upstream
def test_every_policy_entry_names_one_upstream_file_folder_or_definition():
    """[[keep]], [[whole]], [[sampled]] and [[off_surface]]: the file or folder/ exists, and a
    file::qualname is defined exactly once there (an entry naming nothing would judge nothing)."""
    policy = load_policy()
    entries = entry_paths(policy)
    assert len(entries) > 100 and stale_entries(policy, UPSTREAM) == []
    counts: dict[str, dict] = {}
    not_one = []
    for entry in entries:
        file, _, qualname = entry.partition("::")
        if qualname:
            counts.setdefault(file, definition_counts((UPSTREAM / file).read_bytes()))
            if counts[file][qualname] != 1:
                not_one.append((entry, counts[file][qualname]))
    assert not_one == []


@needs_upstream
def test_each_off_surface_entry_holds_only_the_definition_it_names_and_what_is_nested_in_it():
    """No prefix bleeding: `file::Foo` judges Foo and Foo.bar, never FooBar or Foo2 beside it."""
    policy = load_policy()
    exact = [e for e in policy.off_surface if e.qualname]
    assert len(exact) > 100
    sources: dict[str, bytes] = {}
    wrong = []
    for entry in exact:
        source = sources.setdefault(entry.prefix, (UPSTREAM / entry.prefix).read_bytes())
        held = {q for q in definition_counts(source) if entry.holds(q)}
        if held != nested_qualnames(source, entry.qualname):
            wrong.append(entry.path)
    assert wrong == []


def test_an_entry_holds_its_def_and_members_but_not_names_it_prefixes():
    entry = OffSurface("sglang/srt/a.py", "another family", "Foo")
    assert entry.holds("Foo") and entry.holds("Foo.bar") and entry.holds("Foo.Inner.baz")
    assert not any(entry.holds(q) for q in ("FooBar", "Foo2", "Foo_bar", "Bar.Foo", "Bar"))
    policy = Policy(off_surface=(entry,))
    assert policy.off_surface_for("sglang/srt/a.py", "Foo.bar") is entry
    assert policy.off_surface_for("sglang/srt/a.py", "FooBar") is None
    assert policy.off_surface_for("sglang/srt/ab.py", "Foo") is None  # the file, not a name prefix
    assert policy.off_surface_for("sglang/srt/a.py") is None  # a file alone: only whole-file entries


@pytest.mark.parametrize(("table", "path"), [
    ("off_surface", "sglang/::*lora*"), ("off_surface", "sglang/srt/a.py::Foo*"), ("off_surface", "sglang/srt/a?.py"),
    ("off_surface", "sglang/srt/a.py::[Ff]oo"), ("sampled", "sglang/srt/*/"), ("whole", "sglang/srt/ep_*.py"),
    ("keep", "sglang/srt/a.py::Foo.*"),
])
def test_a_pattern_in_any_policy_path_is_refused_in_one_line(tmp_path, table, path):
    policy = tmp_path / "policy.toml"
    if table == "keep":
        policy.write_text(f'[[keep]]\npath = "{path}"\nreason = "r"\nscenario = "s"\n')
    else:
        policy.write_text(f'[[{table}]]\npaths = ["{path}"]\nreason = "r"\nscenario = "s"\n')
    with pytest.raises(SlimError, match="is a pattern") as error:
        load_policy(policy)
    assert "\n" not in str(error.value) and path in str(error.value)


@pytest.mark.parametrize("path", ["sglang/srt/lora/::LoRAManager", "sglang/srt/a.py::"])
def test_a_qualname_needs_a_python_file(tmp_path, path):
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[[off_surface]]\npaths = ["{path}"]\nreason = "r"\n')
    with pytest.raises(SlimError, match="takes a ::qualname"):
        load_policy(policy)


def test_a_stale_entry_stops_the_plan_in_one_line(wheel_tree):
    root, _ = wheel_tree
    recording = recording_of(root, RAN)
    for stale in (OffSurface(f"{REACH}/used.py", "gone", "helper_renamed"), OffSurface(f"{REACH}/gone.py", "gone"),
                  OffSurface(f"{REACH}/gone/", "gone")):
        with pytest.raises(SlimError, match=f"policy entry {stale.path} names nothing"):
            make_function_plan(root, package_files(root), [recording], Policy(off_surface=(stale,)))


def test_the_plan_json_names_the_entry_that_removed_each_def(wheel_tree):
    root, _ = wheel_tree
    scan = (root / REACH / "scan.py").read_text().splitlines()
    rare_branch = {n for n, text in enumerate(scan, 1) if "SLIM_FIXTURE_RARE" in text or "rare_path(found)" in text}
    recording = with_lines(recording_of(root, RAN), root, {f"{REACH}/scan.py": rare_branch})
    by_def = OffSurface(f"{REACH}/used.py", "a debugging aid", "helper_on_error")
    by_file = OffSurface(f"{REACH}/rare.py", "a feature outside the surface")
    plan = make_function_plan(root, package_files(root), [recording],
                              Policy(off_surface=(by_def, by_file)))
    defs = {(d["file"], d["qualname"]): d for d in json.loads(plan.to_json())["defs"]}
    on_error = defs[(f"{REACH}/used.py", "helper_on_error")]
    assert (on_error["action"], on_error["reason"]) == ("stub", str(OFF_SURFACE_STUB))
    assert on_error["policy_entry"] == f"{REACH}/used.py::helper_on_error"
    assert defs[(f"{REACH}/used.py", "helper")]["policy_entry"] is None  # it ran: the recording decided
    rare = [d for (file, _), d in defs.items() if file == f"{REACH}/rare.py" and d["action"] != "keep"]
    assert rare and {d["policy_entry"] for d in rare} == {f"{REACH}/rare.py"}
    unjudged = [d for d in defs.values() if d["action"] != "keep" and d["policy_entry"]
                and d["file"] not in (f"{REACH}/used.py", f"{REACH}/rare.py")]
    assert unjudged == []
