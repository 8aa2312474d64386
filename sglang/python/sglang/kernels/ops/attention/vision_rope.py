"""Fused interleaved complex RoPE for vision attention Q/K tensors."""

from __future__ import annotations

from typing import Tuple

import torch
import triton
import triton.language as tl

PreparedInplaceComplexRoPE = Tuple[torch.Tensor, torch.Tensor]


@triton.jit(do_not_specialize=["n_pairs"])
def _fused_qk_complex_rope_kernel(
    q_ptr,
    k_ptr,
    freqs_ptr,
    q_out_ptr,
    k_out_ptr,
    n_pairs,
    n_heads: tl.constexpr,
    head_dim: tl.constexpr,
    q_stride_token: tl.constexpr,
    q_stride_head: tl.constexpr,
    q_stride_dim: tl.constexpr,
    k_stride_token: tl.constexpr,
    k_stride_head: tl.constexpr,
    k_stride_dim: tl.constexpr,
    freq_stride_token: tl.constexpr,
    freq_stride_pair: tl.constexpr,
    freq_stride_complex: tl.constexpr,
    BLOCK: tl.constexpr,
) -> None:
    pair_offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = pair_offsets < n_pairs
    pairs_per_row = head_dim // 2
    row = pair_offsets // pairs_per_row
    pair = pair_offsets - row * pairs_per_row
    token = row // n_heads
    head = row - token * n_heads

    q_base = token * q_stride_token + head * q_stride_head + pair * 2 * q_stride_dim
    k_base = token * k_stride_token + head * k_stride_head + pair * 2 * k_stride_dim
    freq_base = token * freq_stride_token + pair * freq_stride_pair
    cos = tl.load(freqs_ptr + freq_base, mask=mask).to(tl.float32)
    sin = tl.load(freqs_ptr + freq_base + freq_stride_complex, mask=mask).to(tl.float32)
    q_real = tl.load(q_ptr + q_base, mask=mask).to(tl.float32)
    q_imag = tl.load(q_ptr + q_base + q_stride_dim, mask=mask).to(tl.float32)
    k_real = tl.load(k_ptr + k_base, mask=mask).to(tl.float32)
    k_imag = tl.load(k_ptr + k_base + k_stride_dim, mask=mask).to(tl.float32)

    out_base = row * head_dim + pair * 2
    tl.store(
        q_out_ptr + out_base,
        tl.fma(-q_imag, sin, q_real * cos),
        mask=mask,
    )
    tl.store(
        q_out_ptr + out_base + 1,
        tl.fma(q_real, sin, q_imag * cos),
        mask=mask,
    )
    tl.store(
        k_out_ptr + out_base,
        tl.fma(-k_imag, sin, k_real * cos),
        mask=mask,
    )
    tl.store(
        k_out_ptr + out_base + 1,
        tl.fma(k_real, sin, k_imag * cos),
        mask=mask,
    )




def apply_fused_qk_complex_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    freqs_cis: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def prepare_fused_qk_complex_rope_inplace(
    freqs_cis: torch.Tensor,
) -> PreparedInplaceComplexRoPE:
    raise NotImplementedError("removed by slim: never run in any recording")


def apply_fused_qk_complex_rope_inplace(
    q: torch.Tensor,
    k: torch.Tensor,
    prepared_rope: PreparedInplaceComplexRoPE,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def precompile_fused_qk_complex_rope(
    *,
    num_heads: int,
    head_dim: int,
    dtype: torch.dtype,
    device: torch.device,
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")
