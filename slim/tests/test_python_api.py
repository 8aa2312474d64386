"""The offline Engine API on the surface (slim/surface/python_api.py): its methods derived from a tiny
upstream, the recorded rule, and on the committed tree every public method of upstream's Engine whole."""

import ast
from pathlib import Path
from textwrap import dedent

import pytest

from slim import upstream as up
from slim.check_surface import is_stub
from slim.surface.pysrc import Source
from slim.surface.python_api import derive_engine_methods, engine_methods
from slim.surface.status import ran_at_source

PACKAGE = Path(__file__).resolve().parents[2] / "sglang" / "python"
UPSTREAM = up.default_tree(up.load_pin())
FILES = {
    "sglang/srt/entrypoints/engine.py": """
        from sglang.srt.entrypoints.engine_base import EngineBase
        from sglang.srt.entrypoints.score import ScoreMixin

        class Engine(ScoreMixin, EngineBase):
            def generate(self):
                pass

            async def async_generate(self):
                pass

            def _start(self):
                pass
        """,
    "sglang/srt/entrypoints/score.py": """
        class ScoreMixin:
            def score(self):
                pass
        """,
    "sglang/srt/entrypoints/engine_base.py": """
        class EngineBase(ABC):
            def generate(self):
                pass

            def shutdown(self):
                pass
        """,
}


def write_tree(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dedent(text))
    return root


def test_public_methods_of_the_engine_and_its_sglang_bases_are_items(tmp_path):
    items = derive_engine_methods(Source(write_tree(tmp_path)))
    assert [(i["id"], i["source"]) for i in items] == [
        ("python:Engine.generate", "sglang/srt/entrypoints/engine.py::Engine.generate"),  # the override, once
        ("python:Engine.async_generate", "sglang/srt/entrypoints/engine.py::Engine.async_generate"),
        ("python:Engine.score", "sglang/srt/entrypoints/score.py::ScoreMixin.score"),
        ("python:Engine.shutdown", "sglang/srt/entrypoints/engine_base.py::EngineBase.shutdown"),
    ]


def test_a_method_is_recorded_when_a_recording_ran_its_definition(tmp_path):
    item = next(i for i in derive_engine_methods(Source(write_tree(tmp_path))) if i["name"] == "Engine.score")
    assert ran_at_source(item, {("sglang/srt/entrypoints/score.py", "ScoreMixin.score")})
    assert not ran_at_source(item, {("sglang/srt/entrypoints/engine.py", "Engine.score")})


def methods_by_name(root: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Each public method `Engine` answers to in the tree at `root`."""
    return {method.name: method for _, _, method in engine_methods(Source(root))}


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream sglang not fetched")
def test_the_committed_engine_has_every_public_method_of_upstreams_whole():
    """Until 2026-12-07 the tree had cut six (collective_rpc, save_sharded_model, save_remote_model,
    async_encode, async_load/unload_lora_adapter) and get_all_child_pids: no recording drove an Engine."""
    upstream = methods_by_name(UPSTREAM)
    slimmed = methods_by_name(PACKAGE)
    assert sorted(set(upstream) - set(slimmed)) == []
    assert sorted(name for name, node in slimmed.items() if is_stub(node)) == []


def class_methods(root: Path, rel: str, name: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse((root / rel).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


GRPC_BRIDGE = ("sglang/srt/entrypoints/grpc_bridge.py", "RuntimeHandle")
GRPC_EXTENSION = "sglang/srt/grpc/_core.cpython-312-x86_64-linux-gnu.so"



@pytest.mark.skipif(not (UPSTREAM / GRPC_EXTENSION).is_file(), reason="upstream sglang not fetched")
def test_every_method_the_native_grpc_server_calls_by_name_is_whole():
    """The Rust gRPC server (--grpc-port) calls RuntimeHandle's methods through PyO3, by names that are
    strings in the extension; no recording sent a gRPC request, so until 2026-12-07 slim had cut
    submit_request, health_check, list_models and every submit_openai_*."""
    binary = (UPSTREAM / GRPC_EXTENSION).read_bytes()
    called = {name for name in class_methods(UPSTREAM, *GRPC_BRIDGE)
              if not name.startswith("_") and name.encode() in binary}
    assert {"submit_request", "submit_openai_chat", "health_check"} <= called
    kept = class_methods(PACKAGE, *GRPC_BRIDGE)
    assert sorted(called - set(kept)) == []
    assert sorted(name for name in called if is_stub(kept[name])) == []


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream sglang not fetched")
@pytest.mark.parametrize("rel, name", [("sglang/lang/interpreter.py", "ProgramState"),
                                       ("sglang/lang/ir.py", "SglExpr"),
                                       ("sglang/srt/parser/conversation.py", "Conversation")])
def test_public_classes_of_client_scripts_keep_every_public_method(rel, name):
    """A client program streams with state.text_iter() and scopes with var_scope ([[whole]] sglang/lang/
    had kept only what kept code names); a prompt-building script calls a conversation template's
    set_system_message or to_openai_api_messages, which no upstream code calls: all cut until 2026-12-07."""
    upstream = {m for m in class_methods(UPSTREAM, rel, name) if not m.startswith("_")}
    assert sorted(upstream - set(class_methods(PACKAGE, rel, name))) == []
