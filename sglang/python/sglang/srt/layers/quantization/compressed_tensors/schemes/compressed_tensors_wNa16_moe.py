from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from sglang.srt.layers.moe.moe_runner import MoeRunnerConfig
from sglang.srt.layers.quantization.compressed_tensors.schemes import (
    CompressedTensorsMoEScheme,
)
from sglang.srt.utils import get_bool_env_var, is_cuda, is_hip

if TYPE_CHECKING:

    from sglang.srt.layers.moe.token_dispatcher import (
        CombineInput,
        StandardDispatchOutput,
    )

__all__ = [
    "CompressedTensorsWNA16MoE",
    "CompressedTensorsWNA16TritonMoE",
]

_is_hip = is_hip()
_is_cuda = is_cuda()

_use_aiter = get_bool_env_var("SGLANG_USE_AITER") and _is_hip



logger = logging.getLogger(__name__)


class CompressedTensorsWNA16MoE(CompressedTensorsMoEScheme):

    pass


class CompressedTensorsWNA16TritonMoE(CompressedTensorsWNA16MoE):
    """ROCm/HIP-compatible W4A16 MoE method using Triton kernels instead of Marlin.

    Inherits weight creation from CompressedTensorsWNA16MoE but converts
    weights to the uint8-packed format expected by the Triton fused MoE kernel
    instead of the Marlin-specific format.
    """

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        raise NotImplementedError('slim removed the body of CompressedTensorsWNA16TritonMoE.process_weights_after_loading: it never ran in any recording (see sglang/REMOVED.md)')

    def create_moe_runner(
        self, layer: torch.nn.Module, moe_runner_config: MoeRunnerConfig
    ):
        raise NotImplementedError('slim removed the body of CompressedTensorsWNA16TritonMoE.create_moe_runner: it never ran in any recording (see sglang/REMOVED.md)')

    def apply_weights(
        self,
        layer: torch.nn.Module,
        dispatch_output: StandardDispatchOutput,
    ) -> CombineInput:
        raise NotImplementedError('slim removed the body of CompressedTensorsWNA16TritonMoE.apply_weights: it never ran in any recording (see sglang/REMOVED.md)')


