# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional

import torch

from sglang.srt.environ import envs
from sglang.srt.layers.quantization.fp8_utils import (
    block_quant_dequant,
    inverse_transform_scale_ue8m0,
)
from sglang.srt.layers.quantization.modelopt_quant import (
    ModelOptNvFp4FusedMoEMethod,
    ModelOptQuantConfig,
)
from sglang.srt.layers.quantization.unquant import UnquantizedLinearMethod
from sglang.srt.layers.quantization.utils import (
    is_layer_skipped,
    per_tensor_dequantize,
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
        return "nvfp4_online"

    @classmethod
    def get_supported_act_dtypes(cls) -> List[torch.dtype]:
        return [torch.bfloat16, torch.half]

    @classmethod
    def get_min_capability(cls) -> int:
        return 100

    @classmethod
    def get_config_filenames(cls) -> List[str]:
        return []

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> NvFp4OnlineConfig:
        quant_method = str(config.get("quant_method", "")).lower()
        use_mxfp8 = "mxfp8" in quant_method
        is_checkpoint_fp8_serialized = "fp8" in quant_method or use_mxfp8
        ignored_layers = config.get("ignored_layers") or config.get(
            "modules_to_not_convert"
        )
        if isinstance(ignored_layers, str):
            ignored_layers = [ignored_layers]
        return cls(
            exclude_modules=ignored_layers,
            packed_modules_mapping=config.get("packed_modules_mapping"),
            is_checkpoint_fp8_serialized=is_checkpoint_fp8_serialized,
            activation_scheme=config.get("activation_scheme", "dynamic"),
            weight_block_size=config.get("weight_block_size"),
            use_mxfp8=use_mxfp8,
        )

    def get_quant_method(self, layer: torch.nn.Module, prefix: str):
        from sglang.srt.layers.linear import LinearBase
        from sglang.srt.layers.moe.fused_moe_triton import FusedMoE
        from sglang.srt.layers.quantization.fp8 import Fp8LinearMethod, Fp8MoEMethod

        if isinstance(layer, LinearBase):
            if is_layer_skipped(
                prefix, self.exclude_modules, self.packed_modules_mapping
            ) or self.is_layer_excluded(prefix):
                return UnquantizedLinearMethod()
            if self.is_checkpoint_fp8_serialized:
                return Fp8LinearMethod(self)
            return UnquantizedLinearMethod()
        if isinstance(layer, FusedMoE):
            if is_layer_skipped(
                prefix, self.exclude_modules, self.packed_modules_mapping
            ) or self.is_layer_excluded(prefix):
                return None
            if is_layer_skipped(
                prefix, self.fp4_ignored_layers, self.packed_modules_mapping
            ):
                if self.is_checkpoint_fp8_serialized:
                    return Fp8MoEMethod(self)
                return None
            return ModelOptNvFp4OnlineFusedMoEMethod(self, prefix)
        return None


class ModelOptNvFp4OnlineFusedMoEMethod(ModelOptNvFp4FusedMoEMethod):
    """MoE method that converts source expert weights to NVFP4 during loading."""

    def __init__(self, quant_config: NvFp4OnlineConfig, layer_prefix: str):
        super().__init__(quant_config)
        self.layer_prefix = layer_prefix
        layer_match = re.search(r"(?:^|\.)layers\.(\d+)(?:\.|$)", layer_prefix)
        self.layer_log_name = (
            f"layer {layer_match.group(1)} ({layer_prefix})"
            if layer_match is not None
            else layer_prefix
        )
        if not self.supports_nvfp4_online_moe:
            raise ValueError(
                "--quantization nvfp4_online supports flashinfer_trtllm, "
                "flashinfer_trtllm_routed, or flashinfer_cutedsl with "
                "FlashInfer A2A or DeepEP low_latency."
            )








