"""What upstream picks by itself for DeepSeek on an NVIDIA GPU stays on the surface.

A launch that names no attention backend gets the one `ServerArgs._get_default_attn_backend` returns;
for an MLA model (DeepSeek V2/V3/R1) on Hopper that is FlashAttention-3. Were that value removed, the
plain launch command would pass the front door (the user named nothing) and fail at start-up.
Checked on the real upstream tree (skipped when it is not fetched)."""

import ast
from pathlib import Path

import pytest

from slim import upstream as up
from slim.platform_names import folded
from slim.surface import load_surface

REPO = Path(__file__).resolve().parents[2]
SERVER_ARGS = "sglang/srt/server_args.py"


def mla_default_backends(server_args: ast.Module) -> set[str]:
    """The values `_get_default_attn_backend` returns for an MLA model on NVIDIA: the `else` of its
    `if not use_mla_backend:`, other platforms' branches folded away."""
    func = next(n for n in ast.walk(server_args)
                if isinstance(n, ast.FunctionDef) and n.name == "_get_default_attn_backend")
    branch = next(n for n in ast.walk(func) if isinstance(n, ast.If) and isinstance(n.test, ast.UnaryOp)
                  and isinstance(n.test.operand, ast.Name) and n.test.operand.id == "use_mla_backend")
    return {r.value.value for stmt in branch.orelse for r in ast.walk(stmt)
            if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant)}


def test_mla_defaults_are_read_from_the_source():
    source = ast.parse("def _get_default_attn_backend(self, use_mla_backend):\n"
                       "    if not use_mla_backend:\n        return 'mha'\n"
                       "    else:\n        if hopper():\n            return 'fa3'\n        return 'triton'\n")
    assert mla_default_backends(source) == {"fa3", "triton"}


@pytest.mark.skipif(not up.default_tree(up.load_pin()).is_dir(), reason="upstream sglang not fetched")
def test_upstreams_default_deepseek_attention_is_not_removed():
    tree = up.default_tree(up.load_pin())
    defaults = mla_default_backends(folded(SERVER_ARGS, ast.parse((tree / SERVER_ARGS).read_text())))
    assert "fa3" in defaults  # the Hopper default, as of 0.5.17
    frame = load_surface(REPO / "coverage_db")
    status = dict(zip(frame.id, frame.status, strict=True))
    assert {v: status[f"flag:--attention-backend={v}"] for v in defaults
            if status[f"flag:--attention-backend={v}"] == "removed"} == {}
