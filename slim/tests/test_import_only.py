"""benchmarks/import_only.py: a kept module counts as only imported when every recording imported it and
nothing but its module body ran in any of them."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

_spec = importlib.util.spec_from_file_location(
    "import_only", Path(__file__).resolve().parents[2] / "benchmarks" / "import_only.py")
import_only = sys.modules.setdefault("import_only", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(import_only)


def recording(functions: list[tuple[str, str]], modules: list[str]) -> SimpleNamespace:
    return SimpleNamespace(data={"functions": [[f, q, 1, 3] for f, q in functions],
                                 "modules": [[m.replace("/", "."), m, 3] for m in modules]})


def test_only_imported_everywhere_and_never_run_beyond_its_body():
    runs = [recording([("a.py", "<module>"), ("b.py", "<module>"), ("b.py", "f")], ["a.py", "b.py", "c.py"]),
            recording([("a.py", "<module>"), ("c.py", "<module>")], ["a.py", "b.py", "c.py"]),
            recording([("a.py", "<module>")], ["a.py", "b.py", "d.py"])]
    # b ran a function; c, d were not imported by every run; e is not kept
    assert import_only.import_only(runs, {"a.py", "b.py", "c.py", "d.py"}) == ["a.py"]
    assert import_only.import_only(runs[:2], {"a.py", "b.py", "c.py"}) == ["a.py", "c.py"]


def test_importers_are_the_module_level_imports_that_load_it(tmp_path):
    (tmp_path / "sglang").mkdir()
    (tmp_path / "sglang/a.py").write_text("import sglang.b\n\ndef f():\n    import sglang.c\n")
    (tmp_path / "sglang/b.py").write_text("")
    (tmp_path / "sglang/c.py").write_text("")
    files = ["sglang/a.py", "sglang/b.py", "sglang/c.py"]
    assert import_only.importers(tmp_path, files, ["sglang/b.py", "sglang/c.py"]) == {
        "sglang/b.py": ["sglang/a.py"], "sglang/c.py": []}  # c is imported lazily only
