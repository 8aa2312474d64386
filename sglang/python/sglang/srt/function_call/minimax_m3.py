import logging
import re
from typing import Any, Dict, List, Optional

from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.base_format_detector import BaseFormatDetector
from sglang.srt.function_call.core_types import (
    StreamingParseResult,
    ToolCallItem,
    _GetInfoFunc,
)

logger = logging.getLogger(__name__)


MINIMAX_NS_TOKEN = "]<]minimax[>["
STRING_TYPES = {"string", "str"}
INTEGER_TYPES = {"integer", "int"}
NUMBER_TYPES = {"number", "float"}
BOOLEAN_TYPES = {"boolean", "bool"}
SCALAR_TYPES = STRING_TYPES | INTEGER_TYPES | NUMBER_TYPES | BOOLEAN_TYPES | {"null"}
CONTAINER_TYPES = {"object", "array"}
# Exact-case only; "none"/"nil" are valid string enum values, never null-coerced.
NULL_STRINGS = {"null", "Null", "NULL"}


class MinimaxM3Detector(BaseFormatDetector):
    TOOL_CALL_START = MINIMAX_NS_TOKEN + "<tool_call>"
    TOOL_CALL_END = MINIMAX_NS_TOKEN + "</tool_call>"

    INVOKE_PREFIX = MINIMAX_NS_TOKEN + '<invoke name="'
    INVOKE_SUFFIX = MINIMAX_NS_TOKEN + "</invoke>"
    PARAM_START_PREFIX = MINIMAX_NS_TOKEN + "<"
    TAG_SPACING_CHARS = " \t\r\n"
    TAG_SPACING_RE = re.compile(re.escape(MINIMAX_NS_TOKEN) + r"[ \t\r\n]+(?=<)")

    def __init__(self):
        super().__init__()
        self._in_tool_call = False
        self._current_function_name: Optional[str] = None
        self._current_function_schema: Optional[Dict[str, Any]] = None
        self._current_param_name: Optional[str] = None
        self._current_param_schema: Optional[Dict[str, Any]] = None
        self._current_param_buffer = ""
        self._current_param_is_complex = False
        self._current_string_started = False
        self._is_first_param = True



    def has_tool_call(self, text: str) -> bool:
        return self.TOOL_CALL_START in self._normalize_tag_spacing(text)

    def detect_and_parse(self, text: str, tools: List[Tool]) -> StreamingParseResult:
        original_text = text
        try:
            text = self._normalize_tag_spacing(text)
            normal_text, calls = self._extract(text, tools)
            return StreamingParseResult(normal_text=normal_text, calls=calls)
        except Exception as exc:
            logger.warning(
                "invalid MiniMax M3 tool call returned as content: %s",
                exc,
                exc_info=True,
            )
            return StreamingParseResult(normal_text=original_text, calls=[])

    def supports_structural_tag(self) -> bool:
        return False

    def structure_info(self) -> _GetInfoFunc:
        raise NotImplementedError



    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        self._buffer += new_text
        self._buffer = self._normalize_tag_spacing(self._buffer)
        normal_text = ""
        calls: List[ToolCallItem] = []

        while True:
            if not self._in_tool_call:
                start = self._buffer.find(self.TOOL_CALL_START)
                if start == -1:
                    flush_length = self._flushable_prefix_length(
                        self._buffer, self.TOOL_CALL_START
                    )
                    normal_text += self._buffer[:flush_length]
                    self._buffer = self._buffer[flush_length:]
                    break

                normal_text += self._buffer[:start]
                self._buffer = self._buffer[start + len(self.TOOL_CALL_START) :]
                self._in_tool_call = True
                self._current_function_name = None
                continue

            if self._current_function_name is None:
                if self._consume_tool_call_end():
                    continue
                if not self._consume_invoke_start(tools, calls):
                    break
                continue

            if self._current_param_name is None:
                if self._consume_invoke_end(calls):
                    continue
                if not self._consume_param_start(calls):
                    break
                continue

            if self._current_param_is_complex:
                if not self._consume_complex_param(calls):
                    break
            elif not self._consume_scalar_param(calls):
                break

        return StreamingParseResult(normal_text=normal_text, calls=calls)





















