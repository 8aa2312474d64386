"""MXFP8 quantization helpers for Inkling attention."""

from __future__ import annotations


import torch

MXFP8_BLOCK_SIZE = 32


def quant_store_kv_mxfp8(
    k: torch.Tensor,
    v: torch.Tensor,
    loc: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sfk: torch.Tensor,
    sfv: torch.Tensor,
    page_size: int = 128,
) -> None:
    raise NotImplementedError('slim removed the body of quant_store_kv_mxfp8: it never ran in any recording (see sglang/REMOVED.md)')


