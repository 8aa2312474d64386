# Adapted from trtllm.

from typing import Any, Callable, Optional

import torch

from sglang.srt.runtime_context import get_forward






def with_multi_stream(enable: bool):
    return get_forward().scoped(multi_stream=enable)


def maybe_execute_in_parallel(
    fn0: Callable,
    fn1: Callable,
    events: list[torch.cuda.Event],
    aux_stream: Optional[torch.cuda.Stream] = None,
) -> tuple[Any, Any]:
    raise NotImplementedError("removed by slim: never run in any recording")
