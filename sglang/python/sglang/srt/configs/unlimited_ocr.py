"""Standalone UNLIMITED-OCR configuration and HF processor."""

from typing import Any

from transformers import (
    AutoConfig,
    AutoProcessor,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    ProcessorMixin,
)

from sglang.srt.configs.deepseek_ocr import (
    MlpProjectorConfig,
    VisionEncoderConfig,
    )
from sglang.srt.multimodal.customized_mm_processor_utils import (
    register_customized_processor,
)


class UnlimitedOCRHFProcessor(ProcessorMixin):
    """HuggingFace-style processor for UNLIMITED-OCR (OCR mode)."""

    tokenizer_class = "PreTrainedTokenizerFast"
    attributes = ["tokenizer"]

@register_customized_processor(processor_class=UnlimitedOCRHFProcessor)
class UnlimitedVLConfig(PretrainedConfig):
    """Top-level vision-language config for UNLIMITED-OCR models."""

    model_type = "unlimited-ocr"
    vision_config: VisionEncoderConfig = None
    projector_config: MlpProjectorConfig = None

    tile_tag: str = "2D"
    global_view_pos: str = "head"
    candidate_resolutions: tuple[tuple[int, int]] = ((384, 384),)
    customized_processor_type: type[Any] = UnlimitedOCRHFProcessor

AutoProcessor.register(UnlimitedVLConfig, UnlimitedOCRHFProcessor)

try:
    AutoConfig.register("unlimited-ocr", UnlimitedVLConfig)
except ValueError:
    pass
