"""Shared CUDA graph executable-dedup plumbing for CUDA graph backends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


try:
    from cuda.bindings import driver as cuda_drv
    from cuda.bindings import runtime as cuda_rt
except ImportError:
    cuda_drv = None
    cuda_rt = None


logger = logging.getLogger(__name__)


def kernel_name(params) -> str:
    raise NotImplementedError('slim removed the body of kernel_name: it never ran in any recording (see sglang/REMOVED.md)')


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
        raise NotImplementedError('slim removed the body of DedupedCudaGraph.replay: it never ran in any recording (see sglang/REMOVED.md)')


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
