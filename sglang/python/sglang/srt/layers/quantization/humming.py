# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
from typing import TYPE_CHECKING, Any, List

import regex as re
import torch

from sglang.srt.environ import envs
from sglang.srt.layers.linear import LinearBase, set_weight_attrs
from sglang.srt.layers.moe import (
    MoeRunner,
    MoeRunnerBackend,
    MoeRunnerConfig,
    get_moe_runner_backend,
)
from sglang.srt.layers.parameter import (
    BasevLLMParameter,
    BlockQuantScaleParameter,
    ChannelQuantScaleParameter,
    GroupQuantScaleParameter,
    ModelWeightParameter,
    PackedvLLMParameter,
    PerTensorScaleParameter,
    RowvLLMParameter,
)
from sglang.srt.layers.quantization.base_config import (
    FusedMoEMethodBase,
    LinearMethodBase,
    QuantizationConfig,
    QuantizeMethodBase,
)
from sglang.srt.layers.quantization.unquant import (
    UnquantizedFusedMoEMethod,
    UnquantizedLinearMethod,
)

if TYPE_CHECKING:
    from sglang.srt.layers.moe.token_dispatcher import CombineInput, DispatchOutput
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
        return "humming"

    @classmethod
    def get_supported_act_dtypes(cls) -> list[torch.dtype]:
        return [torch.bfloat16, torch.half]

    @classmethod
    def get_min_capability(cls) -> int:
        return 75

    @classmethod
    def get_config_filenames(cls) -> list[str]:
        return []

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "HummingConfig":
        return cls(full_config=config)

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
        self.hf_to_sglang_mapper = hf_to_sglang_mapper

    def is_layer_skipped(self, config: dict[str, Any], prefix: str):
        keys = ["ignored_layers", "ignore", "modules_to_not_convert"]
        ignored_layers = self.get_from_keys_or(config, keys, []) or []
        if hasattr(self, "hf_to_sglang_mapper"):
            ignored_layers = self.hf_to_sglang_mapper.apply_list(ignored_layers)

        for entry in ignored_layers:
            if isinstance(entry, str) and entry.startswith("re:"):
                if re.match(entry[3:], prefix):
                    return True
            elif entry in prefix:
                return True

        if "lm_head" in prefix:
            return True

        for regex in config.get("dynamic", {}):
            if regex[:1] != "-":
                continue
            if re.match(regex[2:], prefix):
                return True

        return False

    def get_quant_config_for_layer(
        self, prefix: str, layer_type: str
    ) -> "HummingLayerQuantizationConfig | None":
        raise NotImplementedError('slim removed the body of HummingConfig.get_quant_config_for_layer: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self, layer: torch.nn.Module, prefix: str
    ) -> "QuantizeMethodBase | None":
        layer_type = "other"
        from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE

        if isinstance(layer, FusedMoE):
            layer_type = "moe"
        elif isinstance(layer, LinearBase):
            layer_type = "linear"

        if (
            isinstance(layer, FusedMoE)
            and self.full_config.get("quant_method") == "fp8"
            and self.is_fp4_experts
        ):
            from sglang.srt.layers.quantization.fp8 import Fp8Config

            fp8_config = Fp8Config.from_config(self.full_config)
            fp8_config.is_fp4_experts = True
            return fp8_config.get_quant_method(layer, prefix)

        quant_config = self.get_quant_config_for_layer(prefix, layer_type)
        if quant_config is None:
            if isinstance(layer, FusedMoE):
                return UnquantizedFusedMoEMethod()
            elif isinstance(layer, LinearBase):
                return UnquantizedLinearMethod()
        elif isinstance(layer, LinearBase):
            return HummingLinearMethod(quant_config)
        elif isinstance(layer, FusedMoE):
            return HummingMoEMethod(quant_config)
        return None


class HummingLayerQuantizationConfig(HummingConfig):
    pass


class HummingLinearMethod(LinearMethodBase):
    pass


class HummingMoEMethod(FusedMoEMethodBase):
    pass
