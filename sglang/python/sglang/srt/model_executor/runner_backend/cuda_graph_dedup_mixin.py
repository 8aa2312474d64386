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


def dedup_update(graph_exec: int, raw_graph: int) -> tuple[bool, str]:
    raise NotImplementedError("removed by slim: never run in any recording")




def kernel_name(params) -> str:
    raise NotImplementedError("removed by slim: never run in any recording")








def graph_signature(raw_graph: int):
    raise NotImplementedError("removed by slim: never run in any recording")


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

    def instantiate(self, raw_graph: int) -> int:
        raise NotImplementedError("removed by slim: never run in any recording")


    def register(self, captured_graph) -> DedupedCudaGraph:
        raise NotImplementedError("removed by slim: never run in any recording")


    def stats(self) -> tuple[int, int]:
        raise NotImplementedError("removed by slim: never run in any recording")

    def replay(self, graph: DedupedCudaGraph, stream: int) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def close(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")


class DedupedCudaGraphMixin:
    deduped_cuda_graph: DedupedCudaGraphRegistry | None = None




    def begin_cuda_graph_capture(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def end_cuda_graph_capture(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def close(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
