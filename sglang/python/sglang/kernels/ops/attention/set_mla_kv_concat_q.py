"""Fused MLA decode prepare tail: paged-KV scatter + absorbed-q concat.

One launch replacing the back-to-back ``set_mla_kv_buffer`` +
``concat_mla_absorb_q`` pair on the trtllm-mla decode graph path. Both
workloads are launch-bound data movement at decode batch sizes; the fusion
saves a kernel launch per MLA layer and keeps the PDL chain to the decode
fmha kernel intact. SM90+ only (TMA bulk store) — gate via ``covered()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.kernels.jit.utils import (
    cache_once,
    is_arch_support_pdl,
    load_jit,
    make_cpp_args,
)

if TYPE_CHECKING:
    pass




@cache_once
def can_use_set_mla_kv_concat_q(nope_bytes: int, rope_bytes: int) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")




def covered(
    kv_buffer: torch.Tensor,
    loc: torch.Tensor,
    k_nope: torch.Tensor,
    k_rope: torch.Tensor,
    q_nope: torch.Tensor,
    q_rope: torch.Tensor,
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def _pick_num_warps(total_items: int) -> int:
    # Same GB300 heuristic as set_mla_kv_buffer: small grids favour more CTAs.
    return 4 if total_items <= 768 else 8


def set_mla_kv_concat_q(
    kv_buffer: torch.Tensor,
    loc: torch.Tensor,
    cache_k_nope: torch.Tensor,
    cache_k_rope: torch.Tensor,
    q_nope: torch.Tensor,
    q_rope: torch.Tensor,
    num_warps: int = 0,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")




@cache_once
def can_use_set_mla_kv_concat_q_fp8() -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def covered_fp8(
    kv_buffer: torch.Tensor,
    loc: torch.Tensor,
    k_nope: torch.Tensor,
    k_rope: torch.Tensor,
    q_nope: torch.Tensor,
    q_rope: torch.Tensor,
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def set_mla_kv_concat_q_fp8(
    kv_buffer: torch.Tensor,
    loc: torch.Tensor,
    cache_k_nope: torch.Tensor,
    cache_k_rope: torch.Tensor,
    q_nope: torch.Tensor,
    q_rope: torch.Tensor,
    num_warps: int = 0,
    dcp_world_size: int = 1,
    dcp_rank: int = 0,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
