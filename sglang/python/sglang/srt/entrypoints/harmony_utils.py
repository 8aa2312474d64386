# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Adapted from vLLM: https://github.com/vllm-project/vllm/blob/1b9902806915040ac9b3029f2ab7522ec505afc3/vllm/entrypoints/harmony_utils.py
# Slight differences in processing chat messages
import logging
from typing import Literal, Optional, Union

from openai.types.responses import (
    ResponseOutputItem,
    ResponseReasoningItem,
)
from openai.types.responses.tool import Tool
from openai_harmony import (
    Message,
    ReasoningEffort,
    Role,
    StreamableParser,
    )

from sglang.srt.entrypoints.openai.protocol import ResponseInputOutputItem
from sglang.srt.utils import random_uuid

logger = logging.getLogger(__name__)

REASONING_EFFORT = {
    "high": ReasoningEffort.HIGH,
    "medium": ReasoningEffort.MEDIUM,
    "low": ReasoningEffort.LOW,
}

_harmony_encoding = None


def get_encoding():
    raise NotImplementedError("removed by slim: never run in any recording")


def get_system_message(
    model_identity: Optional[str] = None,
    reasoning_effort: Optional[Literal["high", "medium", "low"]] = None,
    start_date: Optional[str] = None,
    browser_description: Optional[str] = None,
    python_description: Optional[str] = None,
) -> Message:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_developer_message(
    instructions: Optional[str] = None, tools: Optional[list[Tool]] = None
) -> Message:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_user_message(content: str) -> Message:
    return Message.from_role_and_content(Role.USER, content)


def parse_response_input(
    response_msg: ResponseInputOutputItem,
    prev_responses: list[Union[ResponseOutputItem, ResponseReasoningItem]],
) -> Message:
    raise NotImplementedError("removed by slim: never run in any recording")






def render_for_completion(messages: list[Message]) -> list[int]:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_stop_tokens_for_assistant_actions() -> list[int]:
    return get_encoding().stop_tokens_for_assistant_actions()


def get_streamable_parser_for_assistant() -> StreamableParser:
    return StreamableParser(get_encoding(), role=Role.ASSISTANT)


def parse_output_message(message: Message):
    raise NotImplementedError("removed by slim: never run in any recording")


def parse_remaining_state(parser: StreamableParser):
    raise NotImplementedError("removed by slim: never run in any recording")


