import logging
from typing import List

from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.core_types import StreamingParseResult
from sglang.srt.function_call.qwen25_detector import Qwen25Detector

logger = logging.getLogger(__name__)


class TrinityDetector(Qwen25Detector):
    """
    Detector for Trinity models using Qwen-style function call format.

    This detector extends Qwen25Detector to handle tool calls that may appear
    inside <think> sections by stripping the think tags before parsing.

    Reference: https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct?chat_template=default
    """

    def has_tool_call(self, text: str) -> bool:
        raise NotImplementedError('slim removed the body of TrinityDetector.has_tool_call: it never ran in any recording (see sglang/REMOVED.md)')

    def detect_and_parse(self, text: str, tools: List[Tool]) -> StreamingParseResult:
        raise NotImplementedError('slim removed the body of TrinityDetector.detect_and_parse: it never ran in any recording (see sglang/REMOVED.md)')

    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        raise NotImplementedError('slim removed the body of TrinityDetector.parse_streaming_increment: it never ran in any recording (see sglang/REMOVED.md)')
