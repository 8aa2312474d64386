# Adapted from trtllm.

from typing import Any, Callable, Optional

import torch



def with_multi_stream(enable: bool):
    raise NotImplementedError('slim removed the body of with_multi_stream: it never ran in any recording (see sglang/REMOVED.md)')


def maybe_execute_in_parallel(
    fn0: Callable,
    fn1: Callable,
    events: list[torch.cuda.Event],
    aux_stream: Optional[torch.cuda.Stream] = None,
) -> tuple[Any, Any]:
    raise NotImplementedError('slim removed the body of maybe_execute_in_parallel: it never ran in any recording (see sglang/REMOVED.md)')
