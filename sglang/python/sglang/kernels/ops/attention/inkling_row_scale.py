"""CUDA-JIT vectorized per-row scale (the apply_log_scaling_tau contract):
``out[row, :] = bf16(fp32(x[row, :]) * tau[row])``. See
csrc/tml/inkling_row_scale.cuh; the scalar triton kernel remains the fallback
for non-bf16 / unaligned inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.kernels.jit.utils import (
    cache_once,
    is_arch_support_pdl,
    load_jit,
    make_cpp_args,
)

if TYPE_CHECKING:
    pass






def row_compact_bf16(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
