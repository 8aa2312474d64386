from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_K3_N_GEMM_DISPATCH_MAP = {
    (144, 7168): 16,
    (896, 7168): 8,
}
_K3_K_GEMM_DISPATCH_MAP = {
    (1536, 128): 12,
}


def situ_and_mul_masked_post_quant(
    input: torch.Tensor,
    output: torch.Tensor,
    output_scale: torch.Tensor,
    quant_group_size: int,
    masked_m: torch.Tensor,
    beta: float,
    linear_beta: float,
    scale_ue8m0: bool = False,
    topk: int = 8,
    transposed: bool = False,
    swizzle: bool = False,
) -> None:
    raise NotImplementedError('slim removed the body of situ_and_mul_masked_post_quant: it never ran in any recording (see sglang/REMOVED.md)')


__all__ = [
    "situ_and_mul_masked_post_quant",
]
