# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import torch

from sglang.srt.environ import envs
from sglang.srt.layers.quantization.modelopt_quant import (
    ModelOptQuantConfig,
)

logger = logging.getLogger(__name__)


class NvFp4OnlineConfig(ModelOptQuantConfig):
    """Config for `--quantization nvfp4_online`.

    This mode is a load-time conversion path, not a serialized NVFP4 checkpoint
    format. It reuses the ModelOpt NVFP4 MoE parameter layout and fills those
    parameters by converting BF16/FP16/FP8 expert tensors as they are loaded.
    Dense layers stay in the source checkpoint precision or quantization path.
    """

    # Marker consumed by the ModelOpt FP4 layout and the model loader. Serialized
    # NVFP4 checkpoints use ModelOptFp4Config instead.
    is_nvfp4_online = True
    is_checkpoint_nvfp4_serialized = False
    group_size = 16

    @staticmethod
    def _normalize_ignored_layers(
        ignored_layers: Optional[List[str]],
    ) -> List[str]:
        if not ignored_layers:
            return []
        normalized_ignored_layers = []
        for layer in ignored_layers:
            base = layer.removeprefix("model.")
            normalized_ignored_layers.append(base)
            normalized_ignored_layers.append(f"model.{base}")
        return list(dict.fromkeys(normalized_ignored_layers))

    def __init__(
        self,
        exclude_modules: Optional[List[str]] = None,
        packed_modules_mapping: Optional[Dict[str, List[str]]] = None,
        is_checkpoint_fp8_serialized: bool = False,
        activation_scheme: str = "dynamic",
        weight_block_size: Optional[List[int]] = None,
        use_mxfp8: bool = False,
    ) -> None:
        source_ignored_layers = self._normalize_ignored_layers(exclude_modules)
        fp4_ignored_layers = list(source_ignored_layers)
        if ignored_layers_str := envs.SGLANG_FP4_IGNORED_LAYERS.get():
            fp4_ignored_layers.extend(
                layer.strip()
                for layer in ignored_layers_str.split(",")
                if layer.strip()
            )
        fp4_ignored_layers = self._normalize_ignored_layers(fp4_ignored_layers)
        super().__init__(
            kv_cache_quant_algo=None,
            exclude_modules=source_ignored_layers,
            packed_modules_mapping=packed_modules_mapping or {},
        )
        self.fp4_ignored_layers = fp4_ignored_layers
        # Weights use static NVFP4 scales, while FlashInfer computes activation
        # FP32 scales dynamically per token at runtime.
        self.use_per_token_activation = True
        self.is_checkpoint_fp8_serialized = is_checkpoint_fp8_serialized
        self.is_fp4_experts = False
        self.dequant_fp4_to_fp8 = False
        self.activation_scheme = activation_scheme
        self.weight_block_size = weight_block_size
        self.use_mxfp8 = use_mxfp8

    @classmethod
    def get_name(cls) -> str:
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.get_name: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_supported_act_dtypes(cls) -> List[torch.dtype]:
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.get_supported_act_dtypes: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_min_capability(cls) -> int:
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.get_min_capability: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def get_config_filenames(cls) -> List[str]:
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.get_config_filenames: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> NvFp4OnlineConfig:
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.from_config: it never ran in any recording (see sglang/REMOVED.md)')

    def get_quant_method(self, layer: torch.nn.Module, prefix: str):
        raise NotImplementedError('slim removed the body of NvFp4OnlineConfig.get_quant_method: it never ran in any recording (see sglang/REMOVED.md)')


