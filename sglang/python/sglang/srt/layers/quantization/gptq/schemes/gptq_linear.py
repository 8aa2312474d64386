# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from sglang.srt.layers.parameter import (
    ChannelQuantScaleParameter,
    GroupQuantScaleParameter,
    PackedColumnParameter,
    PackedvLLMParameter,
    RowvLLMParameter,
)
from sglang.srt.utils import set_weight_attrs

from .gptq_scheme import GPTQLinearSchemeBase

if TYPE_CHECKING:
    from sglang.srt.layers.quantization.gptq.gptq import GPTQConfig

__all__ = ["GPTQLinearScheme", "GPTQAscendLinearScheme"]


class GPTQLinearScheme(GPTQLinearSchemeBase):
    def __init__(self, quant_config: GPTQConfig):
        self.quant_config = quant_config
        self.use_v2_format = quant_config.checkpoint_format == "gptq_v2"
        self.kernel = self._init_kernel(quant_config)

    def _init_kernel(self, quant_config: GPTQConfig):
        raise NotImplementedError("removed by slim: never run in any recording")

    def create_weights(
        self,
        layer: torch.nn.Module,
        input_size_per_partition: int,
        output_partition_sizes: list[int],
        input_size: int,
        params_dtype: torch.dtype,
        weight_loader,
        **kwargs,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        self.kernel.process_weights_after_loading(layer)

    def apply_weights(
        self, layer: torch.nn.Module, x: torch.Tensor, bias: Optional[torch.Tensor]
    ):
        raise NotImplementedError("removed by slim: never run in any recording")


class GPTQAscendLinearScheme(GPTQLinearScheme):
    def _init_kernel(self, quant_config: GPTQConfig):
        raise NotImplementedError("removed by slim: never run in any recording")

    def create_weights(self, layer: torch.nn.Module, **kwargs):
        raise NotImplementedError("removed by slim: never run in any recording")
