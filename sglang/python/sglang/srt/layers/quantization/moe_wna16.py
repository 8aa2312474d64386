# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Adapted from https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/layers/quantization/moe_wna16.py
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import torch

from sglang.srt.layers.quantization.awq import AWQConfig
from sglang.srt.layers.quantization.base_config import (
    QuantizationConfig,
    QuantizeMethodBase,
)
from sglang.srt.layers.quantization.gptq import GPTQMarlinConfig
from sglang.srt.utils import get_device_capability

logger = logging.getLogger(__name__)



class MoeWNA16Config(QuantizationConfig):
    """Config class for MOE WNA16 (W8A16/W4A16) quantization."""

    def __init__(
        self,
        linear_quant_method: str,
        weight_bits: int,
        group_size: int,
        has_zp: bool,
        lm_head_quantized: bool,
        modules_to_not_convert: Optional[List[str]],
        full_config: Dict[str, Any],
    ) -> None:
        super().__init__()
        self.weight_bits = weight_bits
        self.group_size = group_size
        self.has_zp = has_zp
        self.bit8_pack_factor = 8 // self.weight_bits
        self.lm_head_quantized = lm_head_quantized
        self.linear_quant_method = linear_quant_method
        self.full_config = full_config
        self.use_marlin = False
        # Avoid circular import

        if self.linear_quant_method == "gptq":
            self.use_marlin = GPTQMarlinConfig.is_gptq_marlin_compatible(full_config)
        elif self.linear_quant_method == "awq":
            capability_tuple = get_device_capability()
            device_capability = (
                -1
                if capability_tuple is None
                else capability_tuple[0] * 10 + capability_tuple[1]
            )
            awq_min_capability = AWQConfig.get_min_capability()
            if device_capability < awq_min_capability:
                raise ValueError(
                    "The quantization method moe_wna16 + awq is not supported "
                    "for the current GPU. "
                    f"Minimum capability: {awq_min_capability}. "
                    f"Current capability: {device_capability}."
                )
        else:
            raise ValueError("moe_wna16 only support gptq and awq.")

        if modules_to_not_convert is None:
            self.modules_to_not_convert = []
        else:
            self.modules_to_not_convert = modules_to_not_convert

    @classmethod
    def get_name(cls) -> str:
        raise NotImplementedError('slim removed the body of MoeWNA16Config.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_supported_act_dtypes(cls) -> List[torch.dtype]:
        raise NotImplementedError('slim removed the body of MoeWNA16Config.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of MoeWNA16Config.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> List[str]:
        raise NotImplementedError('slim removed the body of MoeWNA16Config.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    def get_scaled_act_names(self) -> List[str]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> MoeWNA16Config:
        raise NotImplementedError('slim removed the body of MoeWNA16Config.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def override_quantization_method(cls, hf_quant_cfg, user_quant) -> Optional[str]:
        if user_quant == "moe_wna16" and cls.is_moe_wna16_compatible(hf_quant_cfg):
            return cls.get_name()
        return None

    @classmethod
    def is_moe_wna16_compatible(cls, quant_config: Dict[str, Any]):
        # Extract data from quant config.
        raise NotImplementedError('slim removed the body of MoeWNA16Config.is_moe_wna16_compatible: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self, layer: torch.nn.Module, prefix: str
    ) -> Optional[QuantizeMethodBase]:
        # avoid circular import
        raise NotImplementedError('slim removed the body of MoeWNA16Config.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')


