import json
import re
from enum import Enum, auto
from typing import List, Optional

from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.base_format_detector import BaseFormatDetector
from sglang.srt.function_call.core_types import (
    StreamingParseResult,
    StructureInfo,
    ToolCallItem,
    _GetInfoFunc,
)
from sglang.srt.function_call.utils import safe_literal_eval


class _ParseState(Enum):
    """5 FSM states for the streaming parser.

    Entry guard: READING_VALUE is reachable only from READING_KEY, so the
    "stray <arg_value> before <tool_call>" bug class is structurally
    impossible.

    Exit guard: both READING_KEY and READING_VALUE recover on `</tool_call>`
    by closing the active call (orphan key dropped if any). READING_VALUE
    additionally recovers on `<arg_key>` by replacing the orphan pending key
    with the new one. Both guards match the (regex-tightened) non-streaming
    path. Without them, malformed inputs would leave the FSM stuck in
    READING_VALUE and mis-attribute subsequent values to stale state.
    """

    OUTSIDE = auto()
    READING_NAME = auto()
    READING_KEY = auto()
    READING_VALUE = auto()
    DRAINING = auto()


class PoolsideV1Detector(BaseFormatDetector):
    """
    Detector for poolside Laguna-XS.2 (poolside_v1 series) tool-call wire format.

    Wire format:
        <tool_call>{name}\\n
        <arg_key>{key}</arg_key>\\n
        <arg_value>{val}</arg_value>\\n
        ...
        </tool_call>

    String values are emitted as raw text; non-strings are JSON-encoded by
    the chat template. The parser does schema-based type coercion to round-trip
    them: schema type `string` keeps the raw value; other types attempt
    `json.loads` and fall back to `safe_literal_eval`, then to the raw string.
    """

    # Wire-format tag tokens — constants, not per-instance.
    tool_call_start_token = "<tool_call>"
    tool_call_end_token = "</tool_call>"
    arg_key_start = "<arg_key>"
    arg_key_end = "</arg_key>"
    arg_value_start = "<arg_value>"
    arg_value_end = "</arg_value>"

    tool_call_regex = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
    # Key uses [^<]*? to prevent the non-greedy `.*?` from backtracking
    # across an `</arg_key>` boundary on malformed inputs like
    # `<arg_key>K1</arg_key><arg_key>K2</arg_key><arg_value>V</arg_value>`
    # — without the `[^<]` constraint, the regex matches the entire orphan
    # span as a single key (`K1</arg_key><arg_key>K2`). Param names never
    # contain `<` in practice, so this is safe. The value side keeps `.*?`
    # because legitimate values can contain `<` (HTML, paths, etc.); the
    # `</arg_value>` boundary is anchored enough.
    arg_pair_regex = re.compile(
        r"<arg_key>([^<]*?)</arg_key>\s*<arg_value>(.*?)</arg_value>",
        re.DOTALL,
    )

    _partial_tag_prefixes = (
        tool_call_start_token,
        tool_call_end_token,
        arg_key_start,
        arg_key_end,
        arg_value_start,
        arg_value_end,
    )

    def __init__(self):
        super().__init__()
        self.parsed_pos: int = 0
        self._state: _ParseState = _ParseState.OUTSIDE
        self.current_func_name: Optional[str] = None
        self.current_pending_key: Optional[str] = None
        self.json_started: bool = False

    # ---------- Helpers ----------




    def has_tool_call(self, text: str) -> bool:
        return self.tool_call_start_token in text


    _STRING_TYPES = frozenset({"string", "str", "text", "enum"})




    # ---------- Non-streaming ----------

    def detect_and_parse(self, text: str, tools: List[Tool]) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")

    # ---------- Streaming ----------

    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")

    # ---------- Constrained generation ----------

    def supports_structural_tag(self) -> bool:
        return False

    def structure_info(self) -> _GetInfoFunc:
        raise NotImplementedError("removed by slim: never run in any recording")
