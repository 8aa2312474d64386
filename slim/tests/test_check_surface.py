"""`slim check` on the request path: no stub, no unguarded lazy import of a removed module."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from slim.check import check_tree
from slim.policy import OffSurface, Policy, Sampled, Whole
from slim.transforms.rewrite import _stub_body

POLICY = Policy(sampled=(Sampled("sglang/srt/managers/", "request handling"),),
                off_surface=(OffSurface("sglang/srt/managers/lora_manager.py", "LoRA: refused at its front door"),))
HANDLER = "class Scheduler:\n    def handle(self, req):\n        return req\n"


def stubbed(source: str) -> str:
    """`source` with its first method's body replaced as slim/transforms/rewrite.py writes a stub."""
    lines = source.splitlines(keepends=True)
    method = ast.parse(source).body[0].body[0]
    body = _stub_body(method, "Scheduler.handle", lines)
    return "".join(lines[:method.body[0].lineno - 1]) + body + "".join(lines[method.end_lineno:])


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in {"sglang/__init__.py": "", "sglang/srt/__init__.py": "",
                      "sglang/srt/managers/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture
def trees(tmp_path):
    """(slimmed tree, upstream): upstream also has sglang/srt/grammar.py, which slim removed."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    write(upstream, {"sglang/srt/grammar.py": "def compile_grammar(g):\n    return g\n"})

    def check(files: dict[str, str]) -> list[str]:
        write(tree / "python", files)
        return check_tree(tree, upstream, POLICY).errors

    return check


def test_the_stub_text_is_what_the_rewrite_writes():
    assert "slim removed the body of Scheduler.handle" in stubbed(HANDLER)


def test_a_stub_on_the_request_path_fails(trees):
    assert trees({"sglang/srt/managers/scheduler.py": stubbed(HANDLER)}) == [
        "sglang/srt/managers/scheduler.py:2: stub Scheduler.handle on the request path"]


def test_a_stub_in_a_file_refused_at_its_front_door_passes(trees):
    assert trees({"sglang/srt/managers/lora_manager.py": stubbed(HANDLER)}) == []


def test_a_stub_off_the_request_handling_paths_passes(trees):
    write_to = "sglang/srt/layers/rocm.py"
    assert trees({write_to: stubbed(HANDLER), "sglang/srt/layers/__init__.py": ""}) == []


LAZY = "def grammar_for(req):\n    from sglang.srt.grammar import compile_grammar\n    return compile_grammar(req)\n"
GUARDED = ("def grammar_for(req):\n    try:\n        from sglang.srt.grammar import compile_grammar\n"
           "    except ImportError:\n        return None\n    return compile_grammar(req)\n")


def test_a_lazy_import_of_a_removed_module_on_the_request_path_fails(trees):
    assert trees({"sglang/srt/managers/scheduler.py": LAZY}) == [
        "sglang/srt/managers/scheduler.py:2: imports removed module sglang.srt.grammar on the request path"]


def test_a_removed_module_named_by_from_package_import_fails(trees):
    lazy = "def grammar_for(req):\n    from sglang.srt import grammar\n    return grammar\n"
    assert trees({"sglang/srt/managers/scheduler.py": lazy}) == [
        "sglang/srt/managers/scheduler.py:2: imports removed module sglang.srt.grammar on the request path"]


def test_a_lazy_import_under_try_except_import_error_passes(trees):
    assert trees({"sglang/srt/managers/scheduler.py": GUARDED}) == []


def test_a_try_that_does_not_catch_import_error_guards_nothing(trees):
    unguarded = GUARDED.replace("except ImportError", "except ValueError")
    assert trees({"sglang/srt/managers/scheduler.py": unguarded}) == [
        "sglang/srt/managers/scheduler.py:3: imports removed module sglang.srt.grammar on the request path"]


def test_a_lazy_import_on_a_branch_dead_on_nvidia_passes(trees):
    folded = ("from sglang.srt.utils import is_hip\n\n_is_hip = is_hip()\n\n\n"
              "def grammar_for(req):\n    if _is_hip:\n        from sglang.srt.grammar import compile_grammar\n"
              "        return compile_grammar(req)\n    return req\n")
    utils = "def is_hip():\n    return False\n"
    assert trees({"sglang/srt/managers/scheduler.py": folded, "sglang/srt/utils.py": utils}) == []


def test_imports_behind_an_environment_switch_or_an_off_surface_feature_pass(trees):
    """Upstream's scripted test runtime and wholly off-surface modules (refused at the front door) are no
    finding; any other removed module still is."""
    lazy = ("def hook():\n    from sglang.test.scripted_runtime.scheduler_hook import hook\n    return hook\n\n"
            "def npu():\n    from sglang.srt.managers.lora_manager import LoRAManager\n    return LoRAManager\n")
    assert trees({"sglang/srt/managers/scheduler.py": lazy}) == []
    missing = "def load():\n    from sglang.srt.grammar import compile_grammar\n    return compile_grammar\n"
    assert trees({"sglang/srt/managers/scheduler.py": missing}) == [
        "sglang/srt/managers/scheduler.py:2: imports removed module sglang.srt.grammar on the request path"]


def test_a_file_kept_whole_must_not_import_a_cut_module_on_the_surface(tmp_path):
    """[[whole]] keeps a file for hardware not lent here: a module it loads lazily must be there
    too (the fa4 backend loads its kernels inside a method), unless that module is off the surface."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    write(upstream, {"sglang/srt/grammar.py": "x = 1\n", "sglang/srt/minimax.py": "x = 1\n"})
    backend = ("def forward(q):\n    from sglang.srt.grammar import x\n    return x\n\n"
               "def other_model(q):\n    from sglang.srt.minimax import x\n    return x\n")
    write(tree / "python", {"sglang/srt/sm100_backend.py": backend})
    policy = Policy(wholes=(Whole("sglang/srt/sm100_backend.py", "needs an sm100 GPU", "sm100"),),
                    off_surface=(OffSurface("sglang/srt/minimax.py", "another model family"),))
    assert check_tree(tree, upstream, policy).errors == [
        "sglang/srt/sm100_backend.py:2: import of sglang.srt.grammar: this file is kept whole by slim/policy.toml, "
        "but the module was cut (keep it too, or put it off the surface in slim/policy.toml with its reason)"]
    # not kept whole, and nothing says why no accepted launch reaches them: cut modules named lazily
    assert [e.split(": ")[1].split(",")[0] for e in check_tree(tree, upstream, Policy()).errors] == [
        "lazy import of sglang.srt.grammar", "lazy import of sglang.srt.minimax"]
    off = (OffSurface("sglang/srt/grammar.py", "refused"), OffSurface("sglang/srt/minimax.py", "another family"))
    assert check_tree(tree, upstream, Policy(off_surface=off)).errors == []


def test_a_whole_kept_file_may_lose_a_guarded_import_only_off_the_surface(tmp_path):
    """`sglang serve` imports the diffusion server inside `try: ... finally:`: a missing module
    there is a crash. Inside `try: ... except ImportError:` it is no crash, but the feature the keep
    promises goes quietly (fa4's vendored kernels behind flash_attention_v4.py's try, 2026-12-07):
    an error all the same, unless the module is off the surface (the diffusion server)."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    write(upstream, {"sglang/srt/grammar.py": "x = 1\n"})
    policy = Policy(wholes=(Whole("sglang/srt/serve.py", "a companion entry point", "companions"),))
    body = "def serve():\n    try:\n        from sglang.srt.grammar import x\n        return x\n    {}\n"
    write(tree / "python", {"sglang/srt/serve.py": body.format("finally:\n        pass")})
    assert [e.split(": ")[0] for e in check_tree(tree, upstream, policy).errors] == ["sglang/srt/serve.py:3"]
    write(tree / "python", {"sglang/srt/serve.py": body.format("except ImportError:\n        return None")})
    assert [e.split(": ")[0] for e in check_tree(tree, upstream, policy).errors] == ["sglang/srt/serve.py:3"]
    off = dataclasses.replace(policy, off_surface=(OffSurface("sglang/srt/grammar.py", "a diffusion server"),))
    assert check_tree(tree, upstream, off).errors == []


def test_a_lazy_import_of_an_off_surface_package_passes(tmp_path):
    """An [[off_surface]] folder holds its package too: `from sglang.srt.lora import LoRAManager`
    names sglang/srt/lora/__init__.py, refused at the front door like the folder's modules."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    write(upstream, {"sglang/srt/lora/__init__.py": "class LoRAManager:\n    pass\n"})
    lazy = "def lora(req):\n    from sglang.srt.lora import LoRAManager\n    return LoRAManager\n"
    write(tree / "python", {"sglang/srt/managers/scheduler.py": lazy})
    sampled = (Sampled("sglang/srt/managers/", "request handling"),)
    policy = Policy(sampled=sampled, off_surface=(OffSurface("sglang/srt/lora/", "LoRA: refused at its front door"),))
    assert check_tree(tree, upstream, policy).errors == []
    assert check_tree(tree, upstream, Policy(sampled=sampled)).errors == [
        "sglang/srt/managers/scheduler.py:2: imports removed module sglang.srt.lora on the request path"]


def test_lazy_imports_off_the_request_path_need_a_written_reason(tmp_path):
    """Off the request path a lazy import of a removed module is allowed only under its written
    reason, counted by it: a wholly [[off_surface]] module or an environment opt-in
    (BEHIND_ENVIRONMENT). With neither, nothing says why no accepted launch gets there: an error."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    write(upstream, {"sglang/srt/grammar.py": "x = 1\n", "sglang/srt/minimax.py": "x = 1\n",
                     "sglang/kernels/ops/moe/moe_align.py": "x = 1\n",
                     "sglang/kernels/ops/moe/moe_align_single_token.py": "x = 1\n"})
    modules = ["sglang.srt.grammar", "sglang.srt.minimax", "sglang.kernels.ops.moe.moe_align",
               "sglang.kernels.ops.moe.moe_align_single_token"]
    body = "".join(f"def f{i}():\n    from {m} import x\n    return x\n" for i, m in enumerate(modules))
    write(tree / "python", {"sglang/srt/model_runner.py": body})
    report = check_tree(tree, upstream, Policy(off_surface=(OffSurface("sglang/srt/minimax.py", "another family"),)))
    # grammar and moe_align_single_token (not the moe_align module the switch names) have no written reason
    assert [e.split(": ")[1].split(",")[0] for e in report.errors] == [
        "lazy import of sglang.srt.grammar", "lazy import of sglang.kernels.ops.moe.moe_align_single_token"]
    lazy = {what: n for what, n in report.notes.items() if "off-surface" in what or "environment switch" in what}
    assert sorted(lazy.values()) == [1, 1]
    assert any("SGLANG_EXPERIMENTAL_LORA_OPTI" in what for what in lazy)


def test_an_environment_key_names_a_module_or_a_package_never_a_name_prefix():
    """BEHIND_ENVIRONMENT "a.b" holds a.b and a.b.c, not a.b_other; "a.b." holds what is under a.b."""
    from slim.check_surface import behind_environment

    assert behind_environment("sglang.kernels.ops.moe.moe_align")
    assert behind_environment("sglang.kernels.ops.moe.moe_align_single_token") is None
    assert behind_environment("sglang.kernels.ops.moe.trtllm_lora_temp.topk_softmax_pack")
    assert behind_environment("sglang.test.scripted_runtime.scheduler_hook")
    assert behind_environment("sglang.test.runners") is None  # in scope: only the scripted runtime is switched
    assert behind_environment("sglang.testing") is None
