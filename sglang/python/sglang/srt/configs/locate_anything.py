# SPDX-License-Identifier: Apache-2.0
# Adapted from https://huggingface.co/nvidia/LocateAnything-3B/blob/main/configuration_locateanything.py
"""Config for nvidia/LocateAnything-3B.

LocateAnything is a multimodal grounding/detection model composed of a MoonViT
vision encoder, an InternVL-style ``mlp1`` projector, and a Qwen2 language model
backbone. The config is a composite that wraps a ``MoonViTConfig`` (vision) and a
``Qwen2Config`` (text) plus the special token ids used for the grounding grammar
(``<box>``/``<ref>``/coordinate tokens).
"""


from transformers.configuration_utils import PretrainedConfig
from transformers.models.qwen2 import Qwen2Config

from sglang.srt.configs.kimi_vl_moonvit import MoonViTConfig


class LocateAnythingConfig(PretrainedConfig):
    model_type = "locateanything"

