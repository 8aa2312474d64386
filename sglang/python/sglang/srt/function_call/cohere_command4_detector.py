import logging


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

