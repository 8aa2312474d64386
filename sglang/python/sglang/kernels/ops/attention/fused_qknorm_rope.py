from __future__ import annotations


import torch

from sglang.kernels.jit.utils import cache_once



@cache_once
def can_use_fused_qk_norm_rope(
    head_dim: int, is_neox: bool, dtype: torch.dtype, yarn: bool = False
) -> bool:
    raise NotImplementedError('slim removed the body of can_use_fused_qk_norm_rope: it never ran in any recording (see sglang/REMOVED.md)')


