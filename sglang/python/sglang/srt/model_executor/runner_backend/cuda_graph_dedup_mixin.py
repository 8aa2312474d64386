"""Shared CUDA graph executable-dedup plumbing for CUDA graph backends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

try:
    from cuda.bindings import driver as cuda_drv
    from cuda.bindings import runtime as cuda_rt
except ImportError:
    cuda_drv = None
    cuda_rt = None

from sglang.srt.environ import envs
from sglang.srt.model_executor.runner_backend_utils.breakable_cuda_graph.cuda_utils import (
    checkCudaErrors,
)
from sglang.srt.utils import get_bool_env_var

logger = logging.getLogger(__name__)




def maybe_cuda_result(result):
    return None if int(result[0]) != 0 else checkCudaErrors(result)


def kernel_name(params) -> str:
    assert cuda_drv is not None
    for handle, getter in (
        (getattr(params, "kern", None), cuda_drv.cuKernelGetName),
        (getattr(params, "func", None), cuda_drv.cuFuncGetName),
    ):
        if handle is None or int(handle) == 0:
            continue
        name = maybe_cuda_result(getter(handle))
        if name is not None:
            return name.decode("utf-8", "replace")
    return f"func:{int(getattr(params, 'func', 0))}"










@dataclass(slots=True)
class GraphExecGroup:
    graph_exec: int
    current_raw_graph: int
    compat_exec: int | None
    graphs: list[DedupedCudaGraph] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class DedupedCudaGraph:
    raw_graph: int
    original_graph: object | None
    registry: DedupedCudaGraphRegistry
    group: GraphExecGroup | None = None

    def replay(self, stream: int | None = None) -> None:
        if stream is None:
            stream = torch.cuda.current_stream().cuda_stream
        self.registry.replay(self, stream)


class DedupedCudaGraphRegistry:
    def __init__(self):
        self.groups: dict[tuple, GraphExecGroup] = {}
        self.sealed = False









class DedupedCudaGraphMixin:
    deduped_cuda_graph: DedupedCudaGraphRegistry | None = None







    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
