import logging
from typing import List


from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.base_format_detector import BaseFormatDetector
from sglang.srt.function_call.core_types import (
    StreamingParseResult,
    StructureInfo,
    _GetInfoFunc,
)
from sglang.srt.function_call.utils import _partial_json_loads

logger = logging.getLogger(__name__)


class CohereCommand4Detector(BaseFormatDetector):
    """Detector for ``<|START_ACTION|>[...JSON array...]<|END_ACTION|>``."""

    def __init__(self):
        super().__init__()
        self.bot_token = "<|START_ACTION|>"
        self.eot_token = "<|END_ACTION|>"
        # Per the chat template the array items are separated by ``,`` only --
        # the surrounding newlines/whitespace are also valid JSON whitespace.
        self.tool_call_separator = ","

    def has_tool_call(self, text: str) -> bool:
        return self.bot_token in text


    def detect_and_parse(self, text: str, tools: List[Tool]) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")

    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")

    def supports_structural_tag(self) -> bool:
        return False

    def structure_info(self) -> _GetInfoFunc:
        raise NotImplementedError("removed by slim: never run in any recording")
