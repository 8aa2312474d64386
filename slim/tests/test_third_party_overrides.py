"""A method that overrides a third-party base's method stays with its class (slim/implicit.py, table
slim/third_party_methods.json from ci/third_party_bases.py): the library calls it by name, so deleting
it silently runs the base's own method (torch.fx.Interpreter.call_module) or leaves the class abstract
(flashinfer's CommBackend.Get_rank), and no recording shows it missing."""

import ast
import json
from pathlib import Path

import pytest

import slim.implicit as implicit
from slim import upstream as up
from slim.policy import load_policy

REPO = Path(__file__).resolve().parents[2]
TREE = REPO / "sglang" / "python"

SOURCE = '''
import torch.fx as fx

def build():
    from flashinfer.comm.mnnvl import CommBackend

    class Backend(CommBackend):
        def Get_rank(self):
            return 0

        def helper(self):
            return 1
    return Backend

class Piecewise(fx.Interpreter):
    def call_module(self, target, args, kwargs):
        return super().call_module(target, args, kwargs)
'''


def reasons(source: str, table: dict[str, list[str]], monkeypatch) -> dict[str, str | None]:
    monkeypatch.setattr(implicit, "third_party_methods", lambda: {k: frozenset(v) for k, v in table.items()})
    tree = ast.parse(source)
    names = implicit.library_names(tree)
    out = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        bases = implicit.third_party_bases(cls, names)
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            out[f"{cls.name}.{method.name}"] = implicit.override_implicit(method, bases)
    return out


def test_overrides_of_listed_bases_are_implicit_and_other_methods_are_not(monkeypatch):
    table = {"torch.fx.Interpreter": ["call_module", "run"], "flashinfer.comm.mnnvl.CommBackend": ["Get_rank"]}
    found = reasons(SOURCE, table, monkeypatch)
    assert found["Piecewise.call_module"] == "overrides torch.fx.Interpreter.call_module: the library calls it by name"
    assert found["Backend.Get_rank"].startswith("overrides flashinfer.comm.mnnvl.CommBackend.Get_rank")
    assert found["Backend.helper"] is None


def test_a_base_missing_from_the_table_changes_nothing(monkeypatch):
    assert set(reasons(SOURCE, {}, monkeypatch).values()) == {None}


def test_the_committed_table_lists_the_bases_found_deleted_before():
    methods = json.loads((REPO / "slim" / "third_party_methods.json").read_text())["methods"]
    assert "call_module" in methods["torch.fx.Interpreter"]
    assert "Get_rank" in methods["flashinfer.comm.mnnvl.CommBackend"]


def missing_overrides(tree_root: Path, upstream: Path) -> list[str]:
    """For each class of the tree with a listed base: the methods upstream's class defines that the
    base defines too and the tree's class lacks. [[off_surface]] files aside: their feature is refused
    at the front door, and the plan stubs what never ran there."""
    table_hits, missing, policy = implicit.third_party_bases, [], load_policy()
    for path in sorted((tree_root / "sglang").rglob("*.py")):
        if policy.off_surface_for(path.relative_to(tree_root).as_posix()) is not None:
            continue
        tree = ast.parse(path.read_text())
        names = implicit.library_names(tree)
        kept = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        source = upstream / path.relative_to(tree_root)
        if not kept or not source.is_file():
            continue
        for cls in (n for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.ClassDef)):
            listed = set().union(*(m for _, m in table_hits(cls, names)))
            if cls.name not in kept or not listed:
                continue
            have = {n.name for n in kept[cls.name].body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            missing += [f"{path.relative_to(tree_root)}::{cls.name}.{n.name}" for n in cls.body
                        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name in listed - have]
    return missing


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_the_committed_tree_keeps_every_listed_override_of_its_kept_classes():
    assert missing_overrides(TREE, up.default_tree(up.load_pin())) == []
