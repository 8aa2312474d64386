"""Public APIs of the language."""

import re
from typing import Callable, List, Optional, Union

from sglang.global_config import global_config
from sglang.lang.backend.base_backend import BaseBackend
from sglang.lang.choices import ChoicesSamplingMethod, token_length_normalized
from sglang.lang.ir import (
    SglExpr,
    SglGen,
    SglSelect,
    )


def function(
    func: Optional[Callable] = None, num_api_spec_tokens: Optional[int] = None
):
    raise NotImplementedError('slim removed the body of function: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def Runtime(*args, **kwargs):
    # Avoid importing unnecessary dependency
    raise NotImplementedError('slim removed the body of Runtime: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def Engine(*args, **kwargs):
    # Avoid importing unnecessary dependency
    raise NotImplementedError('slim removed the body of Engine: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def flush_cache(backend: Optional[BaseBackend] = None):
    raise NotImplementedError('slim removed the body of flush_cache: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def get_server_info(backend: Optional[BaseBackend] = None):
    raise NotImplementedError('slim removed the body of get_server_info: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def gen(
    name: Optional[str] = None,
    max_tokens: Optional[int] = None,
    min_tokens: Optional[int] = None,
    n: Optional[int] = None,
    stop: Optional[Union[str, List[str]]] = None,
    stop_token_ids: Optional[List[int]] = None,
    stop_regex: Optional[Union[str, List[str]]] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    top_k: Optional[int] = None,
    min_p: Optional[float] = None,
    frequency_penalty: Optional[float] = None,
    presence_penalty: Optional[float] = None,
    ignore_eos: Optional[bool] = None,
    return_logprob: Optional[bool] = None,
    logprob_start_len: Optional[int] = None,
    top_logprobs_num: Optional[int] = None,
    return_text_in_logprobs: Optional[bool] = None,
    dtype: Optional[Union[type, str]] = None,
    choices: Optional[List[str]] = None,
    choices_method: Optional[ChoicesSamplingMethod] = None,
    regex: Optional[str] = None,
    json_schema: Optional[str] = None,
):
    """Call the model to generate. See the meaning of the arguments in docs/docs/basic_usage/sampling_params.mdx"""

    if choices:
        return SglSelect(
            name,
            choices,
            0.0 if temperature is None else temperature,
            token_length_normalized if choices_method is None else choices_method,
        )

    # check regex is valid
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as e:
            raise e

    return SglGen(
        name,
        max_tokens,
        min_tokens,
        n,
        stop,
        stop_token_ids,
        stop_regex,
        temperature,
        top_p,
        top_k,
        min_p,
        frequency_penalty,
        presence_penalty,
        ignore_eos,
        return_logprob,
        logprob_start_len,
        top_logprobs_num,
        return_text_in_logprobs,
        dtype,
        regex,
        json_schema,
    )


def image(expr: SglExpr):
    raise NotImplementedError('slim removed the body of image: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def video(path: str, num_frames: int):
    raise NotImplementedError('slim removed the body of video: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def select(
    name: Optional[str] = None,
    choices: Optional[List[str]] = None,
    temperature: float = 0.0,
    choices_method: ChoicesSamplingMethod = token_length_normalized,
):
    assert choices is not None
    return SglSelect(name, choices, temperature, choices_method)


def _role_common(name: str, expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of _role_common: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def system(expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of system: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def user(expr: Optional[SglExpr] = None):
    return _role_common("user", expr)


def assistant(expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of assistant: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def separate_reasoning(
    expr: Optional[SglExpr] = None, model_type: Optional[str] = None
):
    raise NotImplementedError('slim removed the body of separate_reasoning: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')
