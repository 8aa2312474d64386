from __future__ import annotations

from typing import Optional

import torch

from sglang.kernels.jit.utils import cache_once



@cache_once
def can_use_fused_qk_norm_rope(
    head_dim: int, is_neox: bool, dtype: torch.dtype, yarn: bool = False
) -> bool:
    raise NotImplementedError('slim removed the body of can_use_fused_qk_norm_rope: it never ran in any recording (see sglang/REMOVED.md)')


def fused_qk_norm_rope(
    qkv: torch.Tensor,
    num_heads_q: int,
    num_heads_k: int,
    num_heads_v: int,
    head_dim: int,
    eps: float,
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    base: float,
    is_neox: bool,
    position_ids: torch.Tensor,
    factor: float,
    low: float,
    high: float,
    attention_factor: float,
    rotary_dim: Optional[int] = None,
) -> None:
    raise NotImplementedError('slim removed the body of fused_qk_norm_rope: it never ran in any recording (see sglang/REMOVED.md)')
