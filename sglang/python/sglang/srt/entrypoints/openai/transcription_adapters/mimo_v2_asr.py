from __future__ import annotations

from sglang.srt.entrypoints.openai.protocol import (
    TranscriptionRequest,
    TranscriptionUsage,
    TranscriptionVerboseResponse,
)
from sglang.srt.entrypoints.openai.transcription_adapters.base import (
    TranscriptionAdapter,
    register_transcription_adapter,
)


@register_transcription_adapter("MiMoV2ASR")
class MiMoV2ASRAdapter(TranscriptionAdapter):
    """Adapter for MiMo-V2-ASR.

    The multimodal processor (``MiMoV2ASRProcessor``) prepends the audio
    placeholder ``<|sosp|><|empty|>...<|eosp|>`` when ``input_text`` lacks
    one, so the request text can stay empty and the adapter only has to
    supply sampling params and the verbose-response shape.
    """

    def build_sampling_params(self, request: TranscriptionRequest) -> dict:
        raise NotImplementedError('slim removed the body of MiMoV2ASRAdapter.build_sampling_params: it never ran in any recording (see sglang/REMOVED.md)')

    def build_verbose_response(
        self,
        request: TranscriptionRequest,
        text: str,
        ret: dict,
        tokenizer,
        usage: TranscriptionUsage,
    ) -> TranscriptionVerboseResponse:
        # MiMo-V2-ASR does not emit timestamp tokens; segments stay empty
        # until a forced-aligner path is added.
        raise NotImplementedError('slim removed the body of MiMoV2ASRAdapter.build_verbose_response: it never ran in any recording (see sglang/REMOVED.md)')
