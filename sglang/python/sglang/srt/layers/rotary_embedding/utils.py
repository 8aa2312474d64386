"""Primitive rotary embedding ops: _rotate_neox, _rotate_gptj, _apply_rotary_emb,
apply_rotary_pos_emb variants."""

from __future__ import annotations

from typing import Tuple

import torch

from sglang.srt.utils import cpu_has_amx_support, get_compiler_backend, is_cpu, is_npu

_is_npu = is_npu()
_is_cpu = is_cpu()
_is_cpu_amx_available = cpu_has_amx_support()



def rotate_neox(x: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of rotate_neox: it never ran in any recording (see sglang/REMOVED.md)')


def rotate_gptj(x: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of rotate_gptj: it never ran in any recording (see sglang/REMOVED.md)')


def apply_rotary_emb(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    is_neox_style: bool,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of apply_rotary_emb: it never ran in any recording (see sglang/REMOVED.md)')


# Copied from transformers
def apply_rotary_pos_emb_native_eager(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    unsqueeze_dim=1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError('slim removed the body of apply_rotary_pos_emb_native_eager: it never ran in any recording (see sglang/REMOVED.md)')


@torch.compile(dynamic=True, backend=get_compiler_backend())
def apply_rotary_pos_emb_native(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    unsqueeze_dim=1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    return apply_rotary_pos_emb_native_eager(q, k, cos, sin, unsqueeze_dim)


apply_rotary_pos_emb = apply_rotary_pos_emb_native
