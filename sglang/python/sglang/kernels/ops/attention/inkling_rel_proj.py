"""CUDA-JIT latency-lean rel_logits projection for SMALL token counts, with
the optional log-scaling tau prescale folded in registers. See
csrc/tml/inkling_rel_proj.cuh; cuBLAS keeps everything above the measured
small-t band (an earlier bandwidth-oriented custom kernel lost to it at every
size)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.kernels.jit.utils import (
    cache_once,
    empty_sentinel,
    is_arch_support_pdl,
    load_jit,
    make_cpp_args,
)

if TYPE_CHECKING:
    pass




def rel_proj_small_t(
    r: torch.Tensor,
    proj: torch.Tensor,
    tau: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
