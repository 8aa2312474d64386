"""Shared CUDA graph executable-dedup plumbing for CUDA graph backends."""

from __future__ import annotations

import logging


try:
    from cuda.bindings import driver as cuda_drv
    from cuda.bindings import runtime as cuda_rt
except ImportError:
    cuda_drv = None
    cuda_rt = None


logger = logging.getLogger(__name__)


def kernel_name(params) -> str:
    raise NotImplementedError('slim removed the body of kernel_name: it never ran in any recording (see sglang/REMOVED.md)')


class DedupedCudaGraphRegistry:
    pass


class DedupedCudaGraphMixin:
    deduped_cuda_graph: DedupedCudaGraphRegistry | None = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
