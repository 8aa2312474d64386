# Adapted from the DeepSeek-V4 release reference implementation.
"""
DeepSeek-V4 Encoding

A self-contained implementation for encoding/decoding DeepSeek-V4 chat messages
with tool calling, thinking mode, and quick instruction task support.
"""

from typing import Any, Dict, List, Optional, Union

# ============================================================
# Special Tokens
# ============================================================

bos_token: str = "<｜begin▁of▁sentence｜>"
eos_token: str = "<｜end▁of▁sentence｜>"
thinking_start_token: str = "<think>"
thinking_end_token: str = "</think>"
dsml_token: str = "｜DSML｜"

USER_SP_TOKEN = "<｜User｜>"
ASSISTANT_SP_TOKEN = "<｜Assistant｜>"
LATEST_REMINDER_SP_TOKEN = "<｜latest_reminder｜>"

# Task special tokens for internal classification tasks
DS_TASK_SP_TOKENS = {
    "action": "<｜action｜>",
    "query": "<｜query｜>",
    "authority": "<｜authority｜>",
    "domain": "<｜domain｜>",
    "title": "<｜title｜>",
    "read_url": "<｜read_url｜>",
}
VALID_TASKS = set(DS_TASK_SP_TOKENS.keys())

# ============================================================
# Templates
# ============================================================

system_msg_template: str = "{content}"
user_msg_template: str = "{content}"
latest_reminder_msg_template: str = "{content}"
assistant_msg_template: str = "{reasoning}{content}{tool_calls}" + eos_token
assistant_msg_wo_eos_template: str = "{reasoning}{content}{tool_calls}"
thinking_template: str = "{reasoning_content}"

response_format_template: str = (
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{schema}"
)
tool_call_template: str = (
    '<{dsml_token}invoke name="{name}">\n{arguments}\n</{dsml_token}invoke>'
)
tool_calls_template = (
    "<{dsml_token}{tc_block_name}>\n{tool_calls}\n</{dsml_token}{tc_block_name}>"
)
tool_calls_block_name: str = "tool_calls"

tool_output_template: str = "<tool_result>{content}</tool_result>"

REASONING_EFFORT_MAX = (
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n"
)

TOOLS_TEMPLATE = """## Tools

You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "<{dsml_token}tool_calls>" block like the following:

<{dsml_token}tool_calls>
<{dsml_token}invoke name="$TOOL_NAME">
<{dsml_token}parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</{dsml_token}parameter>
...
</{dsml_token}invoke>
<{dsml_token}invoke name="$TOOL_NAME2">
...
</{dsml_token}invoke>
</{dsml_token}tool_calls>

String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.

If thinking_mode is enabled (triggered by {thinking_start_token}), you MUST output your complete reasoning inside {thinking_start_token}...{thinking_end_token} BEFORE any tool calls or final response.

Otherwise, output directly after {thinking_end_token} with tool calls or final response.

### Available Tool Schemas

{tool_schemas}

You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.
"""

# ============================================================
# Utility Functions
# ============================================================


def to_json(value: Any) -> str:
    raise NotImplementedError('slim removed the body of to_json: it never ran in any recording (see sglang/REMOVED.md)')


def tools_from_openai_format(tools):
    raise NotImplementedError('slim removed the body of tools_from_openai_format: it never ran in any recording (see sglang/REMOVED.md)')


def tool_calls_from_openai_format(tool_calls):
    raise NotImplementedError('slim removed the body of tool_calls_from_openai_format: it never ran in any recording (see sglang/REMOVED.md)')


def encode_arguments_to_dsml(tool_call: Dict[str, str]) -> str:
    raise NotImplementedError('slim removed the body of encode_arguments_to_dsml: it never ran in any recording (see sglang/REMOVED.md)')


def render_tools(tools: List[Dict[str, Union[str, Dict[str, Any]]]]) -> str:
    raise NotImplementedError('slim removed the body of render_tools: it never ran in any recording (see sglang/REMOVED.md)')


def find_last_user_index(messages: List[Dict[str, Any]]) -> int:
    raise NotImplementedError('slim removed the body of find_last_user_index: it never ran in any recording (see sglang/REMOVED.md)')


def attach_task_to_last_user_message(messages: List[Dict[str, Any]], task: str) -> None:
    raise NotImplementedError('slim removed the body of attach_task_to_last_user_message: it never ran in any recording (see sglang/REMOVED.md)')


# ============================================================
# Message Rendering
# ============================================================


def render_message(
    index: int,
    messages: List[Dict[str, Any]],
    thinking_mode: str,
    drop_thinking: bool = True,
    reasoning_effort: Optional[str] = None,
) -> str:
    raise NotImplementedError('slim removed the body of render_message: it never ran in any recording (see sglang/REMOVED.md)')


# ============================================================
# Preprocessing
# ============================================================


# ============================================================
# Main Encoding Function
# ============================================================


def encode_messages(
    messages: List[Dict[str, Any]],
    thinking_mode: str,
    context: Optional[List[Dict[str, Any]]] = None,
    drop_thinking: bool = True,
    add_default_bos_token: bool = True,
    reasoning_effort: Optional[str] = None,
) -> str:
    raise NotImplementedError('slim removed the body of encode_messages: it never ran in any recording (see sglang/REMOVED.md)')


# ============================================================
# Parsing (Decoding model output)
# ============================================================


