import logging

from sglang.srt.function_call.base_format_detector import BaseFormatDetector

logger = logging.getLogger(__name__)


class Apertus2509Detector(BaseFormatDetector):
    """
    Detector for Apertus 2509 tool/function call format
    ```
    <|tools_prefix|>[{"tool1": {...}}, {"tool2": {...}}]<|tools_suffix|>
    ```

    Notes:
    - Each list element is a single-key object: {"<tool_name>": <arguments_object>}
    - The list can contain multiple tool calls separated by ", "
    - This is distinct from the OpenAI-style {"name": "...", "arguments": {...}} objects
    """

