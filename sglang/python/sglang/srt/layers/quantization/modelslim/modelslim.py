from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, cast

import torch

from sglang.srt.layers.quantization.base_config import (
    QuantizationConfig,
)
from sglang.srt.utils import apply_module_patch

if TYPE_CHECKING:
    from sglang.srt.layers.quantization.base_config import QuantizeMethodBase

logger = logging.getLogger(__name__)


# func refers to RMSNorm.__init__
def npu_wrapper_rmsnorm_init(func):
    raise NotImplementedError('slim removed the body of npu_wrapper_rmsnorm_init: it never ran in any recording (see sglang/REMOVED.md)')


# func refers to RMSNorm.forward_oot
def npu_wrapper_rmsnorm_forward(func):
    raise NotImplementedError('slim removed the body of npu_wrapper_rmsnorm_forward: it never ran in any recording (see sglang/REMOVED.md)')


class ModelSlimConfig(QuantizationConfig):
    """
    Config class for ModelSlim Quantization, a NPU-specific quantization type.
    """

    def __init__(self, quant_config: Dict[str, Any] = {}):
        super().__init__()
        keys = [k for k in quant_config if isinstance(k, str)]
        is_dsv4 = any(k.startswith("hc_head_") for k in keys)
        if is_dsv4:
            from sglang.srt.models.deepseek_v4 import DeepseekV4ForCausalLM

            remap = DeepseekV4ForCausalLM.remap_weight_name_to_dpsk_hf_format
            quant_config = {
                (remap(k) if isinstance(k, str) else k): v
                for k, v in quant_config.items()
            }

        self.quant_description = quant_config
        ignore = cast(List[str], quant_config.get("ignore", []))
        self.ignore = ignore if ignore is not None else []
        packed_modules_mapping = quant_config.get("packed_modules_mapping", {})
        self.packed_modules_mapping = (
            packed_modules_mapping if packed_modules_mapping is not None else {}
        )

        for name in self.quant_description.keys():
            if "norm.bias" in name:
                apply_module_patch(
                    "sglang.srt.layers.layernorm.RMSNorm",
                    "__init__",
                    [npu_wrapper_rmsnorm_init],
                )
                apply_module_patch(
                    "sglang.srt.layers.layernorm.RMSNorm",
                    "forward_npu",
                    [npu_wrapper_rmsnorm_forward],
                )

    def update_packed_modules_mapping(self, mapping: Dict[str, List[str]]) -> None:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.update_packed_modules_mapping: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_supported_act_dtypes(cls) -> List[torch.dtype]:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_name(cls) -> str:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> List[str]:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> ModelSlimConfig:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self,
        layer: torch.nn.Module,
        prefix: str,
    ) -> Optional[QuantizeMethodBase]:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')

    def get_scaled_act_names(self) -> List[str]:
        raise NotImplementedError('slim removed the body of ModelSlimConfig.get_scaled_act_names: it never ran in any recording (see sglang/REMOVED.md)')


