from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
from torch import nn

from sglang.kernels.ops.attention.inkling_rel_proj import rel_proj_small_t
from sglang.kernels.ops.attention.inkling_row_scale import row_compact_bf16
from sglang.kernels.ops.attention.log_scaling_tau import (
    apply_log_scaling_tau as _apply_log_scaling_tau,
)
from sglang.kernels.ops.attention.score_mod import (
    relative_bias_score_mod as triton_relative_bias_score_mod,
)
from sglang.srt.environ import envs
from sglang.srt.layers.linear import MergedColumnParallelLinear, RowParallelLinear
from sglang.srt.layers.quantization.base_config import QuantizationConfig
from sglang.srt.layers.quantization.unquant import UnquantizedLinearMethod
from sglang.srt.layers.radix_attention import RadixAttention
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.runner_utils.capture_mode import get_is_capture_mode
from sglang.srt.models.inkling_common.kernels.comm import (
    get_ar_buffer,
    reduce_scatter_hidden,
    symm_mem_all_reduce,
)
from sglang.srt.models.inkling_common.norm import RMSNorm
from sglang.srt.models.inkling_common.sconv import SconvType, ShortConvolution
from sglang.srt.models.utils import apply_qk_norm
from sglang.srt.runtime_context import get_exec, get_parallel, get_server_args
from sglang.srt.utils import add_prefix, get_current_device_stream_fast

try:
    import cutlass.cute as cute
    from cutlass.cute import Float32

    from sglang.kernels.ops.attention.flash_attn.cute.seqlen_info import SeqlenInfoQK
except Exception as _import_error:
    cute = None
    Float32 = None
    SeqlenInfoQK = None
    _cute_import_error = _import_error
else:
    _cute_import_error = None


@cache
def get_inkling_relative_attention_score_mod(rel_extent: int) -> Callable:
    if cute is None or Float32 is None or SeqlenInfoQK is None:
        raise ImportError(
            "Inkling relative attention requires the vendored FA4 CUTE interface."
        ) from _cute_import_error

    @cute.jit
    def score_mod_rel_bias(
        scores: cute.TensorSSA,
        b_idx: cute.TensorSSA,
        h_idx: cute.TensorSSA,
        q_idx: cute.TensorSSA,
        kv_idx: cute.TensorSSA,
        seqlen_info: SeqlenInfoQK,
        aux_tensors: list[cute.Tensor],
    ) -> cute.TensorSSA:
        rel_logits = aux_tensors[0]

        seqlen_local_offset = seqlen_info.seqlen_k - seqlen_info.seqlen_q
        rel_dist = (q_idx + seqlen_local_offset) - kv_idx
        global_q_idx = seqlen_info.offset_q + q_idx

        rel_dist_0 = rel_dist[0]
        rel_idx = rel_dist_0 if rel_dist_0 >= 0 else 0
        rel_idx = rel_idx if rel_idx < rel_extent else (rel_extent - 1)

        rel_bias = rel_logits[global_q_idx[0], h_idx[0], rel_idx]
        rel_bias = Float32(rel_bias) if rel_dist_0 == rel_idx else Float32(0.0)
        return scores + rel_bias

    return score_mod_rel_bias




# Strided-matmul band of RelLogitsProj._project (bf16, h=16, d_rel=16,
# extent=1024, r strided from the packed qkvr row).
# t<=48: the zero-copy strided-batched GEMM (r @ proj) wins over einsum's
# hidden-copy chain; t>=64: {JIT row-compact + einsum} wins; the batched
# GEMM degrades past the band.
_REL_PROJ_MATMUL_MAX_T = 48
# tau-ON small-t band: the single rel_proj_small_t launch (tau folded in
# registers) beats the {row_scale -> einsum} chain up to t=32 (loses from
# t=48). tau-OFF stays on cuBLAS everywhere: at t=1 the bare GEMM wins and
# the kernel's launch floor loses -- there is no hidden copy to remove at
# t=1 (r is contiguous).
_REL_PROJ_TAU_KERNEL_MAX_T = 32


def _rel_proj_kernel_eligible(r: torch.Tensor) -> bool:
    """rel_proj_small_t input contract: bf16 CUDA, [t, h, d_rel] with a
    contiguous (h*d_rel) inner block (token rows may be strided), d_rel a
    vector multiple, 16B-aligned base and token stride."""
    return (
        r.is_cuda
        and r.dtype == torch.bfloat16
        and r.stride(-1) == 1
        and r.stride(-2) == r.shape[-1]
        and r.shape[2] % 8 == 0
        and r.data_ptr() % 16 == 0
        and (r.stride(0) * 2) % 16 == 0
    )


class RelLogitsProj(nn.Module):
    def __init__(self, d_rel: int, rel_extent: int):
        super().__init__()
        self.d_rel = d_rel
        self.rel_extent = rel_extent
        self.proj = nn.Parameter(torch.empty(d_rel, rel_extent), requires_grad=False)
        # Fold the optional log-scaling tau into the einsum's r OPERAND: the
        # per-token diagonal scale commutes through the linear projection, so
        # the scale pass runs over [t, h, d_rel] instead of the
        # rel_extent/d_rel-times-larger output (64x at d_rel=16/extent=1024).
        # The einsum itself stays cuBLAS -- the K=16 expansion is tensor-core
        # territory. Rounding moves with the fold (r*tau rounds to bf16 before
        # the GEMM instead of after); flag-off keeps the exact legacy post-scale.
        self._prescale_tau = envs.SGLANG_OPT_USE_INKLING_FUSED_LOG_TAU.get()
        self._proj_dispatch = envs.SGLANG_OPT_USE_INKLING_REL_PROJ_DISPATCH.get()

    def _project(self, r: torch.Tensor) -> torch.Tensor:
        """``einsum("thd,de->the", r, proj)`` -- but dispatched: in production
        ``r`` is a strided view into the packed qkvr projection output, and
        einsum's reshape then hides a slow TensorIterator compaction copy.
        Both replacements are bit-identical to the einsum (same GEMM reduction
        order; asserted in test_inkling_attn_prologue_tau.py)."""
        if not self._proj_dispatch or r.is_contiguous():
            return torch.einsum("thd,de->the", r, self.proj)
        if r.shape[0] <= _REL_PROJ_MATMUL_MAX_T:
            return r @ self.proj  # zero-copy strided-batched GEMM over t
        rows, inner = r.shape[0], r.shape[1] * r.shape[2]
        if (
            r.is_cuda
            and r.dtype == torch.bfloat16
            and r.stride(-1) == 1
            and r.stride(-2) == r.shape[-1]
            and inner % 8 == 0
            and r.data_ptr() % 16 == 0
            and (r.stride(0) * 2) % 16 == 0
        ):
            r2d = torch.as_strided(r, (rows, inner), (r.stride(0), 1))
            r = row_compact_bf16(r2d).view(r.shape)
        return torch.einsum("thd,de->the", r, self.proj)

    def forward(
        self, r_out: torch.Tensor, log_scaling_tau: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``log_scaling_tau``: optional per-token scale applied to the
        projected logits (the conditional long-context log-scaling); folded
        into the projection's r operand when enabled."""
        if log_scaling_tau is not None and self._prescale_tau:
            if (
                self._proj_dispatch
                and r_out.shape[0] <= _REL_PROJ_TAU_KERNEL_MAX_T
                and _rel_proj_kernel_eligible(r_out)
            ):
                # Single launch: tau prescale (same round-before-dot
                # semantics) + projection, replacing the two-kernel
                # {row_scale -> einsum} chain in its band.
                tau_flat = log_scaling_tau.reshape(-1)
                if tau_flat.dtype != torch.float32:
                    tau_flat = tau_flat.float()
                return rel_proj_small_t(r_out, self.proj, tau_flat)
            # The prescale already compacts r (row-scale writes contiguous),
            # so the einsum runs on a contiguous operand via _project.
            r_out = _apply_log_scaling_tau(r_out, log_scaling_tau.view(-1, 1, 1))
            log_scaling_tau = None
        out = self._project(r_out)
        if log_scaling_tau is not None:
            out = _apply_log_scaling_tau(out, log_scaling_tau.view(-1, 1, 1))
        return out


class InklingQKVRLinear(MergedColumnParallelLinear):
    """Fused q/k/v/r projection that is KV-replication-aware for LoRA.

    The base K/V weights are replicated at load when attn_tp_size > num_kv_heads
    (via ``_kv_total_for_sizing``). This subclass carries the head geometry so
    the LoRA wrapper (``InklingQKVRLinearWithLoRA``) can replicate the K/V slices of the
    adapter LoRA-B the same way. ``is_inkling_qkvr`` lets ``get_lora_layer`` route it
    without importing Inkling into ``srt/lora``.
    """

    is_inkling_qkvr = True

    def __init__(
        self,
        *args,
        inkling_num_kv_heads: int,
        inkling_head_dim: int,
        inkling_num_heads: int,
        inkling_d_rel: int,
        inkling_tp_size: int,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.inkling_num_kv_heads = inkling_num_kv_heads
        self.inkling_head_dim = inkling_head_dim
        self.inkling_num_heads = inkling_num_heads
        self.inkling_d_rel = inkling_d_rel
        self.inkling_tp_size = inkling_tp_size


