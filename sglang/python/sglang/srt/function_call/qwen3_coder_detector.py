import logging

from sglang.srt.function_call.base_format_detector import BaseFormatDetector

logger = logging.getLogger(__name__)


class Qwen3CoderDetector(BaseFormatDetector):
    pass
