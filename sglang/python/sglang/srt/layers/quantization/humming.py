# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
from typing import TYPE_CHECKING, Any, List

import torch

from sglang.srt.layers.quantization.base_config import (
    LinearMethodBase,
    QuantizationConfig,
    QuantizeMethodBase,
)

if TYPE_CHECKING:
    from sglang.srt.models.utils import WeightsMapper


DataType = None
HummingMethod = None
BaseInputSchema = None
BaseWeightSchema = None
HummingInputSchema = None
HummingWeightSchema = None
quantize_weight = None


def _lazy_import_humming():
    raise NotImplementedError('slim removed the body of _lazy_import_humming: it never ran in any recording (see sglang/REMOVED.md)')


class HummingConfig(QuantizationConfig):
    packed_modules_mapping = {}

    def __init__(self, full_config: dict[str, Any] | None = None):
        _lazy_import_humming()
        self.full_config: dict[str, Any] = full_config or {}
        self.is_fp4_experts: bool = False

    @classmethod
    def get_name(cls) -> str:
        raise NotImplementedError('slim removed the body of HummingConfig.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_supported_act_dtypes(cls) -> list[torch.dtype]:
        raise NotImplementedError('slim removed the body of HummingConfig.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of HummingConfig.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> list[str]:
        raise NotImplementedError('slim removed the body of HummingConfig.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "HummingConfig":
        raise NotImplementedError('slim removed the body of HummingConfig.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    def get_scaled_act_names(self) -> List[str]:
        raise NotImplementedError

    @classmethod
    def override_quantization_method(cls, hf_quant_cfg, user_quant) -> str | None:
        if hf_quant_cfg.get("quant_method") == "mxfp4":
            # NOTE: gpt-oss has a special weight loading logic, so we don't support it now.
            # TODO: integrate humming kernels to mxfp4.py
            return None
        return "humming" if user_quant == "humming" else None

    def apply_weight_name_mapper(self, hf_to_sglang_mapper: "WeightsMapper"):
        raise NotImplementedError('slim removed the body of HummingConfig.apply_weight_name_mapper: it never ran in any recording (see sglang/REMOVED.md)')

    def is_layer_skipped(self, config: dict[str, Any], prefix: str):
        raise NotImplementedError('slim removed the body of HummingConfig.is_layer_skipped: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self, layer: torch.nn.Module, prefix: str
    ) -> "QuantizeMethodBase | None":
        raise NotImplementedError('slim removed the body of HummingConfig.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')


class HummingLinearMethod(LinearMethodBase):
    pass


