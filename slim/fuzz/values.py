"""Values for request fields: known-good ones where the meaning matters, else one made from the field's
annotation text, and the malformed ones (wrong type, out of range) the fuzzer mixes in.

Every maker takes a `random.Random`, so one seed gives one value."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

MODEL_PLACEHOLDER = "__served_model__"  # the runner puts the served model's name here
NO_VALUE = object()  # the annotation names a class we cannot build blindly (a message, a tool, an image)
TOKEN_IDS = (10, 1000)  # ordinary tokens of the tiny DeepSeek tokenizer (4096 ids, specials below 10)
PROMPTS = ("The capital of France is", "Count to five:", "Write one word.", "def add(a, b):")
TOOL_NAME = "get_weather"
_CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def _tokens(rng: random.Random) -> list[int]:
    return [rng.randint(*TOKEN_IDS) for _ in range(rng.randint(2, 8))]


def _messages(rng: random.Random) -> list[dict]:
    user = {"role": "user", "content": rng.choice(PROMPTS)}
    return rng.choice([[user], [{"role": "system", "content": "Answer briefly."}, user],
                       [user, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "Go on."}]])


def _openai_tools(rng: random.Random) -> list[dict]:
    return [{"type": "function", "function": {"name": TOOL_NAME, "description": "Weather of a city.",
                                              "parameters": _CITY}}]


def _response_format(rng: random.Random) -> dict:
    return rng.choice([{"type": "text"}, {"type": "json_object"},
                       {"type": "json_schema", "json_schema": {"name": "answer", "schema": JSON_SCHEMA}}])


Maker = Callable[[random.Random], object]

# By field name; "Model.name" first where the same name means another thing in another API.
KNOWN: dict[str, Maker] = {
    "model": lambda rng: MODEL_PLACEHOLDER,
    "text": lambda rng: rng.choice([rng.choice(PROMPTS), list(rng.sample(PROMPTS, 2))]),
    "prompt": lambda rng: rng.choice([rng.choice(PROMPTS), _tokens(rng)]),
    "input_ids": _tokens,
    "messages": _messages,
    "input": lambda rng: rng.choice(PROMPTS),
    "tokens": _tokens,
    "temperature": lambda rng: rng.choice([0, 0.5, 1.0, round(rng.uniform(0, 2), 2)]),
    "top_p": lambda rng: round(rng.uniform(0.05, 1), 2),
    "top_k": lambda rng: rng.choice([-1, rng.randint(1, 50)]),
    "min_p": lambda rng: round(rng.uniform(0, 0.5), 2),
    "max_new_tokens": lambda rng: rng.randint(1, 16),
    "max_tokens": lambda rng: rng.randint(1, 16),
    "max_completion_tokens": lambda rng: rng.randint(1, 16),
    "max_output_tokens": lambda rng: rng.randint(1, 16),
    "max_thinking_tokens": lambda rng: rng.randint(1, 16),
    "min_new_tokens": lambda rng: rng.randint(0, 4),
    "min_tokens": lambda rng: rng.randint(0, 4),
    "stop": lambda rng: rng.choice(["\n", [".", " the"], "."]),
    "stop_sequences": lambda rng: [rng.choice([".", "\n"])],
    "stop_token_ids": lambda rng: [rng.randint(*TOKEN_IDS)],
    "n": lambda rng: rng.randint(1, 3),
    "best_of": lambda rng: 1,
    "CompletionRequest.logprobs": lambda rng: rng.randint(0, 5),
    "logprobs": lambda rng: rng.random() < 0.5,
    "top_logprobs": lambda rng: rng.randint(0, 5),
    "top_logprobs_num": lambda rng: rng.randint(0, 5),
    "logprob_start_len": lambda rng: rng.choice([-1, 0, 1]),
    "token_ids_logprob": lambda rng: [rng.randint(*TOKEN_IDS)],
    "seed": lambda rng: rng.randint(0, 2**31 - 1),
    "sampling_seed": lambda rng: rng.randint(0, 2**31 - 1),
    "repetition_penalty": lambda rng: round(rng.uniform(0.8, 1.5), 2),
    "frequency_penalty": lambda rng: round(rng.uniform(-1, 1), 2),
    "presence_penalty": lambda rng: round(rng.uniform(-1, 1), 2),
    "regex": lambda rng: "(yes|no)",
    "json_schema": lambda rng: '{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}',
    "ebnf": lambda rng: 'root ::= "yes" | "no"',
    "logit_bias": lambda rng: {str(rng.randint(*TOKEN_IDS)): round(rng.uniform(-5, 5), 1)},
    "response_format": _response_format,
    "tools": _openai_tools,
    "tool_choice": lambda rng: rng.choice(["auto", "none", "required",
                                           {"type": "function", "function": {"name": TOOL_NAME}}]),
    "AnthropicMessagesRequest.tools": lambda rng: [{"name": TOOL_NAME, "description": "Weather of a city.",
                                                    "input_schema": _CITY}],
    "AnthropicMessagesRequest.tool_choice": lambda rng: rng.choice([{"type": "auto"}, {"type": "any"},
                                                                    {"type": "tool", "name": TOOL_NAME}]),
    "AnthropicMessagesRequest.temperature": lambda rng: round(rng.uniform(0, 1), 2),
    "thinking": lambda rng: rng.choice([{"type": "enabled", "budget_tokens": 8}, {"type": "disabled"}]),
    "system": lambda rng: "Answer briefly.",
    "stream_options": lambda rng: {"include_usage": rng.random() < 0.5},
    "chat_template_kwargs": lambda rng: {"thinking": rng.random() < 0.5},
    "reasoning_effort": lambda rng: rng.choice(["low", "medium", "high"]),
    "user": lambda rng: "fuzz",
    "priority": lambda rng: rng.randint(0, 10),
    "lora_path": lambda rng: "fuzz-lora",
    "custom_logit_processor": lambda rng: "not-a-serialized-processor",
    "session_params": lambda rng: {"id": "fuzz-no-such-session"},
    "session_id": lambda rng: "fuzz-no-such-session",
    "return_hidden_states": lambda rng: rng.random() < 0.5,
    "routed_dp_rank": lambda rng: 0,  # the only data-parallel rank of a one-GPU server
    "disagg_prefill_dp_rank": lambda rng: 0,
    "custom_params": lambda rng: {"fuzz": 1},
    "reasoning": lambda rng: {"effort": rng.choice(["low", "medium", "high"])},
}

# Never sent, whatever the inventory says: fields that make a request wait on another host or
# another server role by design (a hang in upstream too), and ones the server sets for itself.
NOT_FUZZED = {
    "bootstrap_host": "PD disaggregation: the request waits for a KV-transfer peer",
    "bootstrap_port": "PD disaggregation: the request waits for a KV-transfer peer",
    "bootstrap_room": "PD disaggregation: the request waits for a KV-transfer peer",
    "bootstrap_pair_key": "PD disaggregation: the request waits for a KV-transfer peer",
    "encoder_urls": "fetches from an encoder server; nothing outside the host is reachable",
    "mm_data_mooncake": "Mooncake transfer of multimodal data from another host",
    "http_worker_ipc": "set by the server's HTTP worker, not by a client",
    "rid": "request ids must be unique; the runner's concurrent requests would collide",
}

# Out-of-range values that keep the field's type.
OUT_OF_RANGE: dict[str, Maker] = {
    "temperature": lambda rng: rng.choice([-1.0, -0.01]),
    "top_p": lambda rng: rng.choice([0.0, 1.5]),
    "top_k": lambda rng: rng.choice([-5, 0]),
    "min_p": lambda rng: rng.choice([-0.5, 1.5]),
    "max_new_tokens": lambda rng: rng.choice([-3, 0]),
    "max_tokens": lambda rng: rng.choice([-3, 0]),
    "n": lambda rng: rng.choice([0, -1]),
    "repetition_penalty": lambda rng: rng.choice([-1.0, 0.0]),
    "frequency_penalty": lambda rng: rng.choice([-3.0, 3.0]),
    "presence_penalty": lambda rng: rng.choice([-3.0, 3.0]),
    "top_logprobs": lambda rng: rng.choice([-1, 100]),
    "logit_bias": lambda rng: {"-5": 1.0},
}


def known_value(model: str, name: str, rng: random.Random) -> object:
    """The known-good value for a field, or NO_VALUE."""
    maker = KNOWN.get(f"{model}.{name}") or KNOWN.get(name)
    return maker(rng) if maker else NO_VALUE


# ---------------------------------------------------------------------------------------------
# Values from annotation text: "Optional[Union[List[int], int]]", "list[str] | None", "Literal['a', 'b']".

_TOKEN = re.compile(r"\s*(\[|\]|,|\||'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|[A-Za-z_][\w.]*)")


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            return []  # something we do not read (a call, a string with brackets): no value
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _parse(tokens: list[str], at: int) -> tuple[object, int]:
    """One type expression from tokens[at]: a name, or (name, [args]); '|' joins into a Union."""
    options = []
    while True:
        head = tokens[at]
        at += 1
        node: object = head
        if at < len(tokens) and tokens[at] == "[":
            args, at = [], at + 1
            while tokens[at] != "]":
                arg, at = _parse(tokens, at)
                args.append(arg)
                at += tokens[at] == ","
            node, at = (head, args), at + 1
        options.append(node)
        if at < len(tokens) and tokens[at] == "|":
            at += 1
            continue
        return (options[0] if len(options) == 1 else ("Union", options)), at


def _build(node: object, rng: random.Random) -> object:
    name, args = (node, []) if isinstance(node, str) else node
    if name[0] in "'\"-0123456789":  # a Literal's member
        return name[1:-1] if name[0] in "'\"" else float(name) if "." in name else int(name)
    name = name.rsplit(".", 1)[-1]  # typing.List -> List
    scalars = {"int": lambda: rng.randint(0, 8), "float": lambda: round(rng.uniform(0, 1), 2),
               "bool": lambda: rng.random() < 0.5, "str": lambda: rng.choice(("fuzz", "a b", "")),
               "Any": lambda: "fuzz", "None": lambda: None, "NoneType": lambda: None,
               "dict": lambda: {}, "Dict": lambda: {}, "list": lambda: [], "List": lambda: []}
    if not args:
        return scalars[name]() if name in scalars else NO_VALUE
    if name in ("Optional", "Union", "Literal"):
        choices = [a for a in args if a not in ("None", "NoneType")] or args
        return _build(rng.choice(choices), rng)
    if name == "Annotated":
        return _build(args[0], rng)
    if name in ("List", "list", "Sequence", "Tuple", "tuple", "Set", "set"):
        items = [_build(args[0], rng) for _ in range(rng.randint(1, 3))]
        return NO_VALUE if any(i is NO_VALUE for i in items) else items
    if name in ("Dict", "dict", "Mapping") and len(args) == 2:
        key, value = _build(args[0], rng), _build(args[1], rng)
        return NO_VALUE if NO_VALUE in (key, value) or not isinstance(key, str) else {key or "k": value}
    return NO_VALUE


def typed_value(annotation: str, rng: random.Random) -> object:
    """A value of the annotated type, or NO_VALUE when the annotation names a class we cannot build."""
    tokens = _tokenize(annotation or "")
    if not tokens:
        return NO_VALUE
    try:
        node, at = _parse(tokens, 0)
    except IndexError:
        return NO_VALUE
    return _build(node, rng) if at == len(tokens) else NO_VALUE


def wrong_type(value: object, rng: random.Random) -> object:
    """A value of another JSON type than `value`'s."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return rng.choice(["not-a-number", [value]])
    if isinstance(value, str):
        return rng.choice([12345, {"text": value}])
    return rng.choice([7, "not-a-container"])
