"""What `import sglang` hands a user works in the committed tree: every name sglang/__init__.py
imports from an sglang module, or binds through LazyImport("module", "Name"), is defined there and
is no stub (the frontend language's `@sgl.function` raised NotImplementedError until 2026-12-07)."""

import ast
from pathlib import Path

import pytest

from slim import upstream as up
from slim.check_surface import is_stub
from slim.front_door import ENTRY_DOOR, ENTRY_DOOR_MARK
from slim.module_names import module_files
from slim.surface.policy import POLICY, load_policy
from slim.syntax import module_statements, names_bound

PACKAGE = Path(__file__).resolve().parents[2] / "sglang" / "python"


def module_file(root: Path, module: str) -> Path | None:
    return next((root / f for f in module_files(module) if (root / f).is_file()), None)


def exports(init: ast.Module) -> list[tuple[str, str]]:
    """(module, name) for each `from sglang.x import name` and `X = LazyImport("sglang.x", "name")`."""
    found = [(node.module, alias.name) for node in init.body if isinstance(node, ast.ImportFrom)
             and node.module and node.module.startswith("sglang.") for alias in node.names]
    found += [(call.args[0].value, call.args[1].value) for node in init.body
              if isinstance(node, ast.Assign) and isinstance(call := node.value, ast.Call)
              and getattr(call.func, "id", None) == "LazyImport" and len(call.args) == 2]
    return found


def broken_exports(root: Path) -> list[str]:
    """Each export that is missing, or whose def is a stub, as 'module.name: why'."""
    problems = []
    for module, name in exports(ast.parse((root / "sglang" / "__init__.py").read_text())):
        path = module_file(root, module)
        if path is None:
            problems.append(f"{module}.{name}: no module")
            continue
        statements = list(module_statements(ast.parse(path.read_text()).body))
        defs = {n.name: n for n in statements if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        bound = set().union(*(names_bound(n) for n in statements))
        node = defs.get(name)
        if node is None and name not in bound:
            problems.append(f"{module}.{name}: not defined")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_stub(node):
            problems.append(f"{module}.{name}: a stub")
    return problems


def test_exports_are_read_from_the_init(tmp_path):
    (tmp_path / "sglang" / "lang").mkdir(parents=True)
    (tmp_path / "sglang" / "__init__.py").write_text(
        'from sglang.lang.api import gen, function\nOpenAI = LazyImport("sglang.lang.openai", "OpenAI")\n')
    (tmp_path / "sglang" / "lang" / "api.py").write_text(
        "def gen():\n    return 1\n\ndef function():\n"
        "    raise NotImplementedError('slim removed the body of function: it never ran')\n")
    assert broken_exports(tmp_path) == ["sglang.lang.api.function: a stub", "sglang.lang.openai.OpenAI: no module"]


def test_what_import_sglang_exports_works_in_the_committed_tree():
    assert broken_exports(PACKAGE) == []


def exported_names(init: Path) -> set[str]:
    """Every name `import sglang` binds from an sglang module (an import, or LazyImport's second argument)."""
    return {name for _, name in exports(ast.parse(init.read_text()))}


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_import_sglang_exports_every_name_upstreams_does():
    """The tree's own __init__ is no oracle: slim drops an import whose def it cut, so until 2026-12-07
    `sgl.set_default_backend`, `sgl.gen_int`, `sgl.user_begin` and six more were simply absent."""
    upstream = up.default_tree(up.load_pin()) / "sglang" / "__init__.py"
    assert exported_names(upstream) - exported_names(PACKAGE / "sglang" / "__init__.py") == set()


def top_level_defs(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_sglang_utils_keeps_every_helper_of_upstreams():
    """sglang.utils is what upstream's docs import around a server (launch_server_cmd, wait_for_server,
    terminate_process, print_highlight, ...); slim had kept only what the server itself imports."""
    upstream = up.default_tree(up.load_pin()) / "sglang" / "utils.py"
    assert top_level_defs(upstream) - top_level_defs(PACKAGE / "sglang" / "utils.py") == set()


# Operator tools an operator runs against a live server with upstream's wheel (slim/surface.toml keeps them).
OPERATOR_TOOLS = ("sglang.test.send_one", "sglang.test.run_eval", "sglang.test.few_shot_gsm8k",
                  "sglang.test.few_shot_gsm8k_engine", "sglang.test.test_deterministic",
                  "sglang.bench_one_batch_server", "sglang.benchmark.one_batch_server")


def tool_problems(root: Path, upstream: Path, module: str) -> list[str]:
    """Why `python -m module` would not run as upstream's in the tree at `root`: missing, a front-door
    door, a stubbed def, or a top-level def or class of upstream's gone."""
    rel = Path(*module.split(".")).with_suffix(".py")
    if not (root / rel).is_file():
        return [f"{module}: missing"]
    text = (root / rel).read_text()
    if text.encode().startswith(ENTRY_DOOR_MARK):
        return [f"{module}: a front-door stub"]
    stubs = sorted(n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                   and is_stub(n))
    gone = sorted(top_level_defs(upstream / rel) - top_level_defs(root / rel))
    return [f"{module}: stub {name}" for name in stubs] + [f"{module}: no {name}" for name in gone]


def test_a_tool_that_is_a_door_a_stub_or_cut_is_named(tmp_path):
    upstream, root = tmp_path / "up", tmp_path / "slim"
    for tree in (upstream, root):
        (tree / "sglang" / "test").mkdir(parents=True)
    (upstream / "sglang" / "test" / "send_one.py").write_text("def main():\n    pass\n\ndef helper():\n    pass\n")
    (root / "sglang" / "test" / "send_one.py").write_text(
        "def main():\n    raise NotImplementedError('slim removed the body of main: it never ran')\n")
    assert tool_problems(root, upstream, "sglang.test.send_one") == [
        "sglang.test.send_one: stub main", "sglang.test.send_one: no helper"]
    (root / "sglang" / "test" / "send_one.py").write_text(ENTRY_DOOR.format(module="sglang.test.send_one", message="m"))
    assert tool_problems(root, upstream, "sglang.test.send_one") == ["sglang.test.send_one: a front-door stub"]
    assert tool_problems(root, upstream, "sglang.test.run_eval") == ["sglang.test.run_eval: missing"]


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_the_operator_tools_of_sglang_test_run_as_upstreams():
    """send_one, run_eval, few_shot_gsm8k(_engine), test_deterministic and the one-batch server benchmark
    are whole in the committed tree (until 2026-12-07 sglang/test was out of scope: none was shipped, and
    bench_one_batch_server was a front-door stub)."""
    upstream = up.default_tree(up.load_pin())
    kept = {item for entry in load_policy(POLICY) if entry.section == "kept" for item in entry.items}
    assert {f"entry:{module}" for module in OPERATOR_TOOLS} <= kept
    assert [problem for module in OPERATOR_TOOLS for problem in tool_problems(PACKAGE, upstream, module)] == []
