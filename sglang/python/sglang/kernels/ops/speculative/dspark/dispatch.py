from __future__ import annotations



def inputs_on_cuda(*args, **kwargs) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")
