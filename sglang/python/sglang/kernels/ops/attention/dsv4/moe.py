from typing import Optional

import torch

from sglang.srt.utils import is_xpu


_is_xpu = is_xpu()


def mask_topk_ids(topk_ids: torch.Tensor, num_token_non_padded: torch.Tensor):
    raise NotImplementedError('slim removed the body of mask_topk_ids: it never ran in any recording (see sglang/REMOVED.md)')


def mega_moe_pre_dispatch(
    x: torch.Tensor,
    topk_idx: torch.Tensor,
    topk_weights: torch.Tensor,
    buf_x: torch.Tensor,
    buf_x_sf: torch.Tensor,
    buf_topk_idx: torch.Tensor,
    buf_topk_weights: torch.Tensor,
    quant_group_size: int = 32,
) -> None:
    raise NotImplementedError('slim removed the body of mega_moe_pre_dispatch: it never ran in any recording (see sglang/REMOVED.md)')


def silu_and_mul_clamp(
    input: torch.Tensor,
    output: torch.Tensor,
    swiglu_limit: float,
) -> None:
    raise NotImplementedError('slim removed the body of silu_and_mul_clamp: it never ran in any recording (see sglang/REMOVED.md)')


def silu_and_mul_masked_post_quant(
    input: torch.Tensor,
    output: torch.Tensor,
    output_scale: torch.Tensor,
    quant_group_size: int,
    masked_m: torch.Tensor,
    scale_ue8m0: bool = False,
    topk: int = 8,
    transposed: bool = False,
    swiglu_limit: Optional[float] = None,
    swizzle: bool = False,
) -> None:
    raise NotImplementedError('slim removed the body of silu_and_mul_masked_post_quant: it never ran in any recording (see sglang/REMOVED.md)')


def silu_and_mul_contig_post_quant(
    input: torch.Tensor,
    output: torch.Tensor,
    output_scale: torch.Tensor,
    quant_group_size: int,
    scale_ue8m0: bool = False,
    transposed: bool = False,
    swiglu_limit: Optional[float] = None,
    swizzle: bool = False,
) -> None:
    raise NotImplementedError('slim removed the body of silu_and_mul_contig_post_quant: it never ran in any recording (see sglang/REMOVED.md)')
