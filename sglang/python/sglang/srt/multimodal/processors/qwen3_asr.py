

from sglang.srt.models.qwen3_asr import Qwen3ASRForConditionalGeneration

AUDIO_PLACEHOLDER = "<|audio_start|><|audio_pad|><|audio_end|>"

DEFAULT_ASR_PROMPT = (
    f"<|im_start|>user\n"
    f"{AUDIO_PLACEHOLDER}"
    f"<|im_end|>\n"
    f"<|im_start|>assistant\n"
)


