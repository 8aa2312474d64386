"""ModelSlim MXFP8 offline scheme for MoE layers on Ascend NPU (SRT).

Loads weights pre-quantised by msmodelslim: float8_e4m3fn weights + uint8 block
scales (block_size=32). The layout transform and the forward pass are delegated
to ``NPUMXFP8MoEMethod`` -- the same kernel the online MXFP8 MoE path uses.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

import torch

from sglang.srt.hardware_backend.npu.quantization.moe_methods import NPUMXFP8MoEMethod
from sglang.srt.layers.quantization.modelslim.schemes import ModelSlimMoEScheme
from sglang.srt.utils import set_weight_attrs

logger = logging.getLogger(__name__)

__all__ = [
    "ModelSlimMXFP8MoEScheme",
]

# Block (group) size of the msmodelslim MXFP8 export format.
MXFP8_BLOCK_SIZE = 32


class ModelSlimMXFP8MoEScheme(ModelSlimMoEScheme):
    """
    Offline MXFP8 MoE scheme that creates weights for either the
    w13 (gate+up) or w2 (down) projection group.

    Two instances of this class are used per MoE layer:
      - weight_prefix="w13"   → handles the fused gate_proj + up_proj weights
      - weight_prefix="w2"    → handles the down_proj weights

    The float8_e4m3fn weight dtype allocated here is what tells
    ``NPUMXFP8MoEMethod.process_weights_after_loading`` to take its offline
    (re-layout only) branch instead of quantising the weights itself.
    """

    def __init__(
        self,
        quant_config: Dict[str, Any],
        weight_prefix: str,  # "w13" or "w2"
    ) -> None:
        if weight_prefix not in ("w13", "w2"):
            raise ValueError(
                f"weight_prefix must be 'w13' or 'w2', got '{weight_prefix}'"
            )
        self.quant_config = quant_config
        self.weight_prefix = weight_prefix
        self.kernel = NPUMXFP8MoEMethod(weight_prefix)

    def create_weights(
        self,
        layer: torch.nn.Module,
        num_experts: int,
        hidden_size: int,
        intermediate_size_per_partition: int,
        **extra_weight_attrs,
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")
