import logging


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

