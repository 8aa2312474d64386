from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from sglang.kernels.ops.quantization.fp8_kernel import (
    is_fp8_fnuz,
    )
from sglang.srt.layers.quantization.base_config import (
    QuantizationConfig,
    QuantizeMethodBase,
)


_is_fp8_fnuz = is_fp8_fnuz()


class W8A8Fp8Config(QuantizationConfig):
    """Config class for W8A8 FP8 Quantization.

    Weight Quantization:
    - Method: Static quantization
    - Granularity: Per-channel
    - Type: Symmetric

    Activation Quantization:
    - Method: Dynamic quantization
    - Granularity: Per-token
    - Type: Symmetric

    Note:
    - For models without offline quantization, weights will be quantized during model loading
    - If CUTLASS is supported: Per-channel weight quantization is used
    - If CUTLASS is not supported: Falls back to per-tensor weight quantization
    """

    def __init__(self, is_checkpoint_fp8_serialized: bool = False):
        self.is_checkpoint_fp8_serialized = is_checkpoint_fp8_serialized

    @classmethod
    def get_supported_act_dtypes(cls) -> List[torch.dtype]:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_name(self) -> str:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> List[str]:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> W8A8Fp8Config:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(
        self,
        layer: torch.nn.Module,
        prefix: str,
    ) -> Optional[QuantizeMethodBase]:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')

    def get_scaled_act_names(self) -> List[str]:
        raise NotImplementedError('slim removed the body of W8A8Fp8Config.get_scaled_act_names: it never ran in any recording (see sglang/REMOVED.md)')


