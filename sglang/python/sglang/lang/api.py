"""Public APIs of the language."""

from typing import Callable, List, Optional, Union

from sglang.lang.backend.base_backend import BaseBackend
from sglang.lang.choices import ChoicesSamplingMethod, token_length_normalized
from sglang.lang.ir import (
    SglExpr,
    )


def function(
    func: Optional[Callable] = None, num_api_spec_tokens: Optional[int] = None
):
    raise NotImplementedError('slim removed the body of function: it never ran in any recording (see sglang/REMOVED.md)')


def Runtime(*args, **kwargs):
    # Avoid importing unnecessary dependency
    raise NotImplementedError('slim removed the body of Runtime: it never ran in any recording (see sglang/REMOVED.md)')


def Engine(*args, **kwargs):
    # Avoid importing unnecessary dependency
    raise NotImplementedError('slim removed the body of Engine: it never ran in any recording (see sglang/REMOVED.md)')


def flush_cache(backend: Optional[BaseBackend] = None):
    raise NotImplementedError('slim removed the body of flush_cache: it never ran in any recording (see sglang/REMOVED.md)')


def get_server_info(backend: Optional[BaseBackend] = None):
    raise NotImplementedError('slim removed the body of get_server_info: it never ran in any recording (see sglang/REMOVED.md)')


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
    raise NotImplementedError('slim removed the body of gen: it never ran in any recording (see sglang/REMOVED.md)')


def image(expr: SglExpr):
    raise NotImplementedError('slim removed the body of image: it never ran in any recording (see sglang/REMOVED.md)')


def video(path: str, num_frames: int):
    raise NotImplementedError('slim removed the body of video: it never ran in any recording (see sglang/REMOVED.md)')


def select(
    name: Optional[str] = None,
    choices: Optional[List[str]] = None,
    temperature: float = 0.0,
    choices_method: ChoicesSamplingMethod = token_length_normalized,
):
    raise NotImplementedError('slim removed the body of select: it never ran in any recording (see sglang/REMOVED.md)')


def system(expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of system: it never ran in any recording (see sglang/REMOVED.md)')


def user(expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of user: it never ran in any recording (see sglang/REMOVED.md)')


def assistant(expr: Optional[SglExpr] = None):
    raise NotImplementedError('slim removed the body of assistant: it never ran in any recording (see sglang/REMOVED.md)')


def separate_reasoning(
    expr: Optional[SglExpr] = None, model_type: Optional[str] = None
):
    raise NotImplementedError('slim removed the body of separate_reasoning: it never ran in any recording (see sglang/REMOVED.md)')
