

from sglang.srt.managers.schedule_batch import Modality, MultimodalProcessorOutput
from sglang.srt.models.qwen3_asr import Qwen3ASRForConditionalGeneration
from sglang.srt.multimodal.processors.base_processor import (
    BaseMultimodalProcessor,
    )

AUDIO_PLACEHOLDER = "<|audio_start|><|audio_pad|><|audio_end|>"

DEFAULT_ASR_PROMPT = (
    f"<|im_start|>user\n"
    f"{AUDIO_PLACEHOLDER}"
    f"<|im_end|>\n"
    f"<|im_start|>assistant\n"
)


