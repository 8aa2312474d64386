from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch
from torch.nn import Module

from sglang.kernels.ops.moe.pack_topk_ids import PackTopkIds
from sglang.kernels.ops.quantization.fp8_kernel import (
    per_token_group_quant_fp8,
    scaled_fp8_quant,
)

# Import to register custom ops for torch.compile compatibility
from sglang.srt.distributed import get_tp_group
from sglang.srt.distributed.device_communicators.pynccl_allocator import (
    is_symmetric_memory_enabled,
    is_tensor_in_symmetric_mempool,
    use_symmetric_memory,
)
from sglang.srt.environ import envs
from sglang.srt.layers.dp_attention import is_allocation_symmetric
from sglang.srt.layers.moe.flashinfer_trtllm_moe import (
    trtllm_fp8_block_scale_moe_out_wrapper,
    trtllm_fp8_block_scale_routed_moe_out_wrapper,
    trtllm_fp8_per_tensor_scale_moe_wrapper,
)
from sglang.srt.layers.moe.moe_runner.base import (
    MoeQuantInfo,
    MoeRunnerConfig,
    register_fused_func,
)
from sglang.srt.layers.utils import copy_or_rebind_param
from sglang.srt.utils.common import (
    is_flashinfer_available,
    next_power_of_2,
)

_SGLANG_EXPERIMENTAL_LORA_OPTI = envs.SGLANG_EXPERIMENTAL_LORA_OPTI.get()

logger = __import__("logging").getLogger(__name__)

_deferred_finalize_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flashinfer_trtllm_deferred_finalize_enabled", default=False
)

_TRTLLM_MOE_PDL_MAX_TOKENS = envs.SGLANG_TRTLLM_MOE_PDL_MAX_TOKENS.get()


@dataclass
class FlashInferTrtllmDeferredFinalizeOutput:
    gemm2_out: torch.Tensor
    expert_weights: torch.Tensor
    expanded_idx_to_permuted_idx: torch.Tensor
    top_k: int




def finalize_flashinfer_trtllm_deferred_output(
    deferred_output: FlashInferTrtllmDeferredFinalizeOutput,
    shared_output: torch.Tensor,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def round_up_to_multiple(x: int, m: int) -> int:
    """Round up *x* to the nearest multiple of *m*."""
    return (x + m - 1) // m * m


if TYPE_CHECKING:
    from sglang.srt.layers.moe.token_dispatcher import (
        StandardCombineInput,
        StandardDispatchOutput,
    )
    from sglang.srt.layers.moe.token_dispatcher.flashinfer import (
        FlashinferCombineInput,
        FlashinferDispatchOutput,
    )

if is_flashinfer_available():
    from sglang.srt.layers.quantization.fp4_utils import fp4_quantize
else:
    fp4_quantize = None

_flashinfer_trtllm_shuffle_row_indices_cache_mxfp8: dict[
    tuple, dict[str, torch.Tensor]
] = {}


def clear_mxfp8_shuffle_index_cache() -> None:
    raise NotImplementedError("removed by slim: never run in any recording")








def align_fp8_moe_weights_for_flashinfer_trtllm(
    layer: Module, swap_w13_halves: bool = False
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")










def align_fp4_moe_weights_for_flashinfer_trtllm(layer: Module) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_activation_type(activation: str, is_gated: bool = True) -> int:
    raise NotImplementedError("removed by slim: never run in any recording")


@dataclass
class FlashInferTrtllmFp8MoeQuantInfo(MoeQuantInfo):
    """Quantization payload consumed by FlashInfer TRT-LLM FP8 MoE kernels."""

    # Weights
    w13_weight: torch.Tensor
    w2_weight: torch.Tensor

    # Expert-parallel metadata
    global_num_experts: int
    local_expert_offset: int
    local_num_experts: int
    intermediate_size: int

    routing_method_type: int

    # Block-quant path
    block_quant: bool
    use_mxfp8: bool = False
    weight_block_k: int | None = None
    w13_weight_scale_inv: torch.Tensor | None = None
    w2_weight_scale_inv: torch.Tensor | None = None

    # Per-tensor path
    w13_input_scale: torch.Tensor | None = None
    output1_scales_scalar: torch.Tensor | None = None
    output1_scales_gate_scalar: torch.Tensor | None = None
    output2_scales_scalar: torch.Tensor | None = None
    use_routing_scales_on_input: bool = False

    # Activation type (None = kernel default / Swiglu)
    activation_type: int | None = None


def fused_experts_none_to_flashinfer_trtllm_fp8(
    dispatch_output: StandardDispatchOutput,
    quant_info: FlashInferTrtllmFp8MoeQuantInfo,
    runner_config: MoeRunnerConfig,
    use_routed_topk: bool = False,
) -> StandardCombineInput:
    raise NotImplementedError("removed by slim: never run in any recording")


@dataclass
class FlashInferTrtllmFp4MoeQuantInfo(MoeQuantInfo):
    """Quantization payload consumed by FlashInfer TRT-LLM FP4 MoE kernels."""

    w13_weight: torch.Tensor
    w2_weight: torch.Tensor
    w13_weight_scale: torch.Tensor
    w2_weight_scale: torch.Tensor

    # Scaling factors
    g1_scale_c: torch.Tensor
    g1_alphas: torch.Tensor
    g2_alphas: torch.Tensor
    w13_input_scale_quant: torch.Tensor

    # Expert-parallel metadata
    global_num_experts: int
    local_expert_offset: int
    local_num_experts: int
    intermediate_size_per_partition: int

    routing_method_type: int
    use_per_token_activation: bool = False

    gemm1_alpha: Optional[torch.Tensor] = None
    gemm1_beta: Optional[torch.Tensor] = None
    gemm1_clamp_limit: Optional[torch.Tensor] = None






@dataclass
class FlashInferTrtllmBf16MoeQuantInfo(MoeQuantInfo):
    """Quantization payload consumed by FlashInfer TRT-LLM BF16 MoE kernels."""

    gemm1_weights: torch.Tensor
    gemm2_weights: torch.Tensor

    # Expert-parallel metadata
    global_num_experts: int
    local_expert_offset: int










# Register the experimental experimental_sgl_trtllm MoE fused-func (MoeRunner needs it at
# build time even for LoRA); gated by the master switch so the upstream path is untouched.
if _SGLANG_EXPERIMENTAL_LORA_OPTI:
    from sglang.srt.lora.trtllm_lora_temp import sgl_backend  # noqa: E402,F401
