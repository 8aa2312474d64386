"""Shape-specialized Inkling MoE gate top-k + renorm JIT kernels.

Three families, all specialized for the Inkling gate layout (logits
``[tokens, 258]`` fp32 = 256 routed + 2 shared experts, top-6 selection by
``sigmoid(logit) + bias``, logsigmoid renorm over selected ++ shared):

- ``inkling_gate_topk_renorm``      -- v1 warp-per-row gate (int64 indices).
- ``inkling_gate_topk_renorm_v2``   -- v2 gate: wide vector loads, int32
  indices, optional PDL, in-register raw-logit carry (no re-gather).
- ``inkling_gate_gemv`` / ``inkling_gate_gemv_fused`` -- expert-per-block GEMV
  of the gate linear (x [tokens, 6144] bf16 @ W [264, 6144] bf16 -> fp32
  logits), standalone or with the gate epilogue fused into the same launch
  (last finishing block runs it; ticket+workspace are cached per device).

NOTE: the fused/gemv wrappers cache CUDA buffers and JIT-compile on first use;
run them eagerly once before CUDA-graph capture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.kernels.jit.utils import cache_once, load_jit

if TYPE_CHECKING:
    from tvm_ffi.module import Module

_LOGITS_PAD = 264  # fp32 logits row pitch shared with the padded gate GEMM
_HIDDEN = 6144
_TOPK = 6
_N_SHARED = 2
_FUSED_MAX_TOKENS = 64


@cache_once
def _jit_module() -> Module:
    raise NotImplementedError("removed by slim: never run in any recording")






def inkling_gate_topk_renorm(
    logits: torch.Tensor,
    bias: torch.Tensor,
    global_scale: torch.Tensor,
    route_scale: float,
    *,
    return_packed: bool = False,
) -> (
    tuple[torch.Tensor, torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor]
):
    raise NotImplementedError("removed by slim: never run in any recording")


def inkling_gate_topk_renorm_v2(
    logits: torch.Tensor,
    bias: torch.Tensor,
    global_scale: torch.Tensor,
    route_scale: float,
    *,
    return_packed: bool = False,
    enable_pdl: bool = False,
    warps_per_block: int = 0,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    raise NotImplementedError("removed by slim: never run in any recording")




def inkling_gate_gemv(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    enable_pdl: bool = False,
    experts_per_block: int = 0,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


# Per-device (workspace [64, 264] fp32, ticket int32[1]) reused by every fused
# call. The kernel resets the ticket to zero on completion, so the buffers are
# CUDA-graph replay-safe; allocate them eagerly (warmup) before graph capture.
_fused_scratch: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}






def inkling_gate_gemv_fused(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    global_scale: torch.Tensor,
    route_scale: float,
    *,
    return_packed: bool = False,
    enable_pdl: bool = False,
    experts_per_block: int = 0,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    raise NotImplementedError("removed by slim: never run in any recording")
