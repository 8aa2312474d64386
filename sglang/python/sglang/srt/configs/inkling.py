from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import CONFIG_MAPPING
from transformers.configuration_utils import PretrainedConfig

from sglang.srt.configs.mamba_utils import BaseLinearStateParams


class InklingModelConfig(PretrainedConfig):
    model_type = "inkling_model"
    keys_to_ignore_at_inference = ["past_key_values"]

class InklingAudioConfig(PretrainedConfig):
    model_type = "inkling_audio_model"

class InklingVisionConfig(PretrainedConfig):
    model_type = "inkling_vision_model"

class InklingMMConfig(PretrainedConfig):
    model_type = "inkling_mm_model"
    keys_to_ignore_at_inference = ["past_key_values"]
    sub_configs = {
        "text_config": InklingModelConfig,
        "audio_config": InklingAudioConfig,
        "vision_config": InklingVisionConfig,
    }

@dataclass(kw_only=True, frozen=True)
class InklingConvStateShape:
    conv: list[tuple[int, int]]
    temporal: tuple[int, int, int]

    # Conv tuples read (K-1, dim) — the overlapping dedup view would alias
    # along the dim axis, so the dedup conv-intermediate layout must stay off.
    disable_conv_window_dedup: bool = True


@dataclass(kw_only=True, frozen=True)
class InklingStateDType:
    conv: torch.dtype = torch.bfloat16
    temporal: torch.dtype = torch.bfloat16


@dataclass(kw_only=True, frozen=True)
class InklingConvCacheParams(BaseLinearStateParams):
    dtype: InklingStateDType = field(default_factory=InklingStateDType)
    shape: InklingConvStateShape


for _model_type, _config_cls in {
    "inkling_model": InklingModelConfig,
    "inkling_audio_model": InklingAudioConfig,
    "inkling_vision_model": InklingVisionConfig,
    "inkling_mm_model": InklingMMConfig,
}.items():
    try:
        CONFIG_MAPPING.register(_model_type, _config_cls)
    except Exception:
        CONFIG_MAPPING._extra_content[_model_type] = _config_cls
