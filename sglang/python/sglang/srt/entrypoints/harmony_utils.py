# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Adapted from vLLM: https://github.com/vllm-project/vllm/blob/1b9902806915040ac9b3029f2ab7522ec505afc3/vllm/entrypoints/harmony_utils.py
# Slight differences in processing chat messages
import logging

from openai_harmony import (
    ReasoningEffort,
    )

from sglang.srt.entrypoints.openai.protocol import ResponseInputOutputItem

logger = logging.getLogger(__name__)

REASONING_EFFORT = {
    "high": ReasoningEffort.HIGH,
    "medium": ReasoningEffort.MEDIUM,
    "low": ReasoningEffort.LOW,
}

_harmony_encoding = None


def get_stop_tokens_for_assistant_actions() -> list[int]:
    raise NotImplementedError('slim removed the body of get_stop_tokens_for_assistant_actions: it never ran in any recording (see sglang/REMOVED.md)')


