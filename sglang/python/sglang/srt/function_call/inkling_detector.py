import logging
from typing import List, Optional

from xgrammar import StructuralTag

from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.base_format_detector import BaseFormatDetector
from sglang.srt.function_call.core_types import (
    StreamingParseResult,
    StructureInfo,
    ToolCallItem,
    _GetInfoFunc,
)
from sglang.srt.parser.inkling_tokenizer import (
    CONTENT_INVOKE_TOOL_JSON,
    CONTENT_INVOKE_TOOL_TEXT,
    END_MESSAGE,
    INKLING_CONTROL_TOKENS,
    INKLING_SPECIAL_TOKEN_IDS,
    MESSAGE_MODEL,
)

logger = logging.getLogger(__name__)


def _reject_nonfinite_number(value: str) -> float:
    # Strict tool-payload parsing rejects NaN/Infinity; only recovery accepts them.
    raise ValueError(f"{value} is not a valid JSON number")


class InklingDetector(BaseFormatDetector):
    """
    Detector for Inkling structured tool calls.

    Format:
        <|message_model|>name<|content_invoke_tool_json|>{"name":"...","args":{...}}<|end_message|>
    """

    def __init__(self):
        super().__init__()
        self.bot_token = CONTENT_INVOKE_TOOL_JSON
        self.eot_token = END_MESSAGE
        # Streaming: index of the next call to emit; once a call fails to frame,
        # the rest of the response streams through verbatim.
        self._stream_call_index = 0
        self._raw_passthrough = False

    def has_tool_call(self, text: str) -> bool:
        return self.bot_token in text or CONTENT_INVOKE_TOOL_TEXT in text

    def detect_and_parse(self, text: str, tools: List[Tool]) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")






    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        raise NotImplementedError("removed by slim: never run in any recording")



    def structure_info(self) -> _GetInfoFunc:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_auto_tool_call_structural_tag(
        self,
        tools: Optional[List[Tool]] = None,
        thinking_mode: bool = False,
        parallel_tool_calls: bool = True,
    ) -> StructuralTag:
        """Constrain JSON after Inkling's tool-payload trigger token.

        Automatic tool choice still permits unconstrained assistant text. Once
        the model emits ``CONTENT_INVOKE_TOOL_JSON``, XGrammar requires a
        complete ``{"name": string, "args": object}`` payload followed by
        ``END_MESSAGE``. This mirrors the TML sampling default used by the OAI
        API and intentionally does not restrict names to the request's tools.
        """
        del tools, thinking_mode, parallel_tool_calls
        return StructuralTag.model_validate(
            {
                "type": "structural_tag",
                "format": {
                    "type": "token_triggered_tags",
                    "trigger_tokens": [
                        INKLING_SPECIAL_TOKEN_IDS[CONTENT_INVOKE_TOOL_JSON]
                    ],
                    "tags": [
                        {
                            "type": "tag",
                            "begin": {
                                "type": "token",
                                "token": INKLING_SPECIAL_TOKEN_IDS[
                                    CONTENT_INVOKE_TOOL_JSON
                                ],
                            },
                            "content": {
                                "type": "json_schema",
                                "json_schema": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string"},
                                        "args": {"type": "object"},
                                    },
                                    "required": ["name", "args"],
                                    "additionalProperties": False,
                                },
                            },
                            "end": {
                                "type": "token",
                                "token": INKLING_SPECIAL_TOKEN_IDS[END_MESSAGE],
                            },
                        }
                    ],
                },
            }
        )




