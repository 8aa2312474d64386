# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import logging
import warnings
from typing import Any, List, Optional

import torch

from sglang.srt.layers.quantization.base_config import (
    LinearMethodBase,
    QuantizationConfig,
    QuantizeMethodBase,
)
from sglang.srt.layers.quantization.marlin_utils import (
    check_marlin_supported,
    verify_marlin_supported,
)
from sglang.srt.layers.quantization.utils import get_scalar_types
from sglang.srt.utils.patch_torch import register_fake_if_exists



from sglang.srt.utils import is_cuda, is_hip, is_npu, is_xpu

_is_cuda = is_cuda()
_is_hip = is_hip()
_is_xpu = is_xpu()
_is_npu = is_npu()

if not _is_cuda:
    warnings.warn(f"Only CUDA, HIP and XPU support AWQ currently.")

logger = logging.getLogger(__name__)


ScalarType, scalar_types = get_scalar_types()


class AWQConfig(QuantizationConfig):
    """Config class for AWQ.

    Reference: https://arxiv.org/abs/2306.00978
    """

class AWQCPUConfig(AWQConfig):
    """CPU Config class for AWQ, inherit from AWQConfig"""

    def get_supported_act_dtypes(self) -> List[torch.dtype]:
        raise NotImplementedError('slim removed the body of AWQCPUConfig.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self, layer: torch.nn.Module, prefix: str
    ) -> Optional[LinearMethodBase]:
        raise NotImplementedError('slim removed the body of AWQCPUConfig.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')

    def get_linear_scheme(self, layer: torch.nn.Module):
        raise NotImplementedError('slim removed the body of AWQCPUConfig.get_linear_scheme: it never ran in any recording (see sglang/REMOVED.md)')

    def get_moe_scheme(self, layer: torch.nn.Module):
        raise NotImplementedError('slim removed the body of AWQCPUConfig.get_moe_scheme: it never ran in any recording (see sglang/REMOVED.md)')


class AWQMarlinConfig(QuantizationConfig):
    """Config class for AWQ Marlin"""

    # num_bits -> type
    TYPE_MAP = {
        4: scalar_types.uint4,
        8: scalar_types.uint8,
    }

    def __init__(
        self,
        weight_bits: int,
        group_size: int,
        zero_point: bool,
        lm_head_quantized: bool,
        modules_to_not_convert: Optional[list[str]],
        full_config: dict[str, Any],
    ) -> None:
        super().__init__()
        self.pack_factor = 32 // weight_bits  # packed into int32
        self.group_size = group_size
        self.zero_point = zero_point
        self.lm_head_quantized = lm_head_quantized
        self.weight_bits = weight_bits
        self.modules_to_not_convert = modules_to_not_convert or []
        self.full_config = full_config

        if self.weight_bits not in self.TYPE_MAP:
            raise ValueError(
                f"Unsupported num_bits = {self.weight_bits}. "
                f"Supported num_bits = {self.TYPE_MAP.keys()}"
            )

        self.quant_type = self.TYPE_MAP[self.weight_bits]

        verify_marlin_supported(
            self.quant_type, group_size=self.group_size, has_zp=self.zero_point
        )

    def __repr__(self) -> str:
        return (
            f"AWQMarlinConfig(quant_type={self.quant_type}, "
            f"group_size={self.group_size}, "
            f"zero_point={self.zero_point}, "
            f"lm_head_quantized={self.lm_head_quantized}, "
            f"modules_to_not_convert={self.modules_to_not_convert})"
        )

    def get_scaled_act_names(self) -> List[str]:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_scaled_act_names: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_name(cls) -> str:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_supported_act_dtypes(cls) -> list[torch.dtype]:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> list[str]:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AWQMarlinConfig:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def override_quantization_method(cls, hf_quant_cfg, user_quant) -> Optional[str]:
        can_convert = cls.is_awq_marlin_compatible(hf_quant_cfg)
        is_valid_user_quant = (
            user_quant is None or user_quant == "marlin" or user_quant == "awq_marlin"
        )

        if can_convert and is_valid_user_quant:
            msg = (
                "The model is convertible to {} during runtime."
                " Using {} kernel.".format(cls.get_name(), cls.get_name())
            )
            logger.info(msg)
            return cls.get_name()

        if can_convert and user_quant == "awq":
            logger.info(
                "Detected that the model can run with awq_marlin"
                ", however you specified quantization=awq explicitly,"
                " so forcing awq. Use quantization=awq_marlin for"
                " faster inference"
            )
        return None

    def get_quant_method(
        self, layer: torch.nn.Module, prefix: str
    ) -> Optional[QuantizeMethodBase]:
        raise NotImplementedError('slim removed the body of AWQMarlinConfig.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def is_awq_marlin_compatible(cls, quant_config: dict[str, Any]):
        # Extract data from quant config.
        quant_method = quant_config.get("quant_method", "").lower()
        num_bits = quant_config.get("bits")
        group_size = quant_config.get("group_size")
        zero_point = quant_config.get("zero_point")

        if not _is_cuda:
            return False

        if quant_method != "awq":
            return False

        # If we cannot find the info needed in the config, cannot convert.
        if num_bits is None or group_size is None or zero_point is None:
            return False

        if num_bits not in cls.TYPE_MAP:
            return False

        return check_marlin_supported(
            quant_type=cls.TYPE_MAP[num_bits], group_size=group_size, has_zp=zero_point
        )


class AWQLinearMethod(LinearMethodBase):
    """Linear method for AWQ.

    Args:
        quant_config: The AWQ quantization config.
    """

# Register fake implementations for torch.compile support
if _is_cuda:

    @register_fake_if_exists("sgl_kernel::awq_marlin_repack")
    def _(b_q_weight, size_k, size_n, num_bits):
        raise NotImplementedError('slim removed the body of _: it never ran in any recording (see sglang/REMOVED.md)')
