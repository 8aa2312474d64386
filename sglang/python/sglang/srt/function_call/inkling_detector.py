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
        if not self.has_tool_call(text):
            return StreamingParseResult(normal_text=self._clean_normal_text(text))

        parsed = self._parse_canonical(text, tools)
        if parsed is not None:
            normal_text, calls = parsed
            return StreamingParseResult(normal_text=normal_text, calls=calls)

        # Canonical framing failed. Recover a single call from the last tool
        # marker; if that fails too, surface the whole visible payload as text.
        recovered = self._recover_last_json_call(text, tools)
        if recovered is not None:
            return StreamingParseResult(normal_text="", calls=[recovered])
        return StreamingParseResult(normal_text=self._clean_normal_text(text))






    def parse_streaming_increment(
        self, new_text: str, tools: List[Tool]
    ) -> StreamingParseResult:
        self._buffer += new_text
        if self._raw_passthrough:
            out = self._clean_normal_text(self._buffer)
            self._buffer = ""
            return StreamingParseResult(normal_text=out)

        normal_parts: list[str] = []
        calls: list[ToolCallItem] = []
        while self._buffer:
            marker_pos, marker_token, is_json = self._next_tool_marker(self._buffer, 0)
            if marker_pos is None:
                safe, hold = self._split_safe_text(self._buffer)
                normal_parts.append(self._clean_normal_text(safe))
                self._buffer = hold
                break

            prefix, _ = self._split_trailing_tool_header(self._buffer[:marker_pos])
            body_start = marker_pos + len(marker_token)
            eot = self._buffer.find(self.eot_token, body_start)
            if eot == -1:
                # Region incomplete — emit only the text before it and hold the
                # marker + partial body so name/args stay atomic until the close.
                normal_parts.append(self._clean_normal_text(prefix))
                self._buffer = self._buffer[marker_pos:]
                break

            body = self._buffer[body_start:eot]
            if is_json:
                call = self._canonical_json_call(body, tools, self._stream_call_index)
                if call is None:
                    return self._stream_recover_or_fallback(tools)
            else:
                call = self._text_tool_call(body, self._stream_call_index)
            normal_parts.append(self._clean_normal_text(prefix))
            calls.append(call)
            self._stream_call_index += 1
            self._buffer = self._buffer[eot + len(self.eot_token) :]

        return StreamingParseResult(normal_text="".join(normal_parts), calls=calls)



    def structure_info(self) -> _GetInfoFunc:
        def info(name: str) -> StructureInfo:
            trigger = f"{MESSAGE_MODEL}{name}{self.bot_token}"
            return StructureInfo(
                begin=f'{trigger}{{"name":"{name}","args":',
                end=f"}}{self.eot_token}",
                trigger=trigger,
            )

        return info

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




