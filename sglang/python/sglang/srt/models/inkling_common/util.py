from __future__ import annotations

import abc

import torch
from torch import nn

from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE
from sglang.srt.layers.moe.moe_runner.base import MoeRunnerConfig
from sglang.srt.layers.quantization.base_config import QuantizationConfig
from sglang.srt.layers.quantization.unquant import UnquantizedFusedMoEMethod
from sglang.srt.runtime_context import get_lora


def lora_compatible_layout_enabled() -> bool:
    """Use the contiguous ``[gate || up]`` layout required by LoRA slicing."""
    return get_lora().enable_lora












class FusedMoELoadingMixin(abc.ABC):
    def __init__(
        self,
        quant_config: QuantizationConfig | None,
        quant_method: UnquantizedFusedMoEMethod,
        moe_runner_config: MoeRunnerConfig,
        moe_tp_rank: int,
        moe_tp_size: int,
    ) -> None:
        super().__init__()
        helper = FusedMoE.__new__(FusedMoE)
        nn.Module.__init__(helper)
        helper.quant_config = quant_config
        helper.quant_method = quant_method
        helper.moe_runner_config = moe_runner_config
        helper.use_triton_kernels = False
        helper.moe_tp_rank = moe_tp_rank
        helper.moe_tp_size = moe_tp_size
        helper.use_presharded_weights = False
        helper.use_flashinfer_trtllm_moe = False
        # Keep this parameterless loading helper out of the module tree so
        # post-load processing does not treat it as a quantized layer.
        object.__setattr__(self, "helper", helper)

    def weight_loader_fused(
        self,
        param: torch.nn.Parameter,
        loaded_weight: torch.Tensor,
        weight_name: str,
        shard_id: str,
    ) -> None:
        return self.helper.weight_loader_fused(
            param, loaded_weight, weight_name, shard_id
        )
