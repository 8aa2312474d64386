"""K3 fused o_proj GEMM+AR dispatch (``SGLANG_K3_GEMM_AR``).

Glue between the model and ``kernels.ops.kimi_k3.gemm_ar``: lazily allocates
the P2P comm region on the TP group and swaps the o_proj RowParallelLinear
forward for the single fused GEMM+all-reduce kernel at decode shapes
(falling through to the regular GEMM + AR path whenever the input doesn't
fit — prefill, capture, non-2D input). Eager-mode only; see
kernels/ops/kimi_k3/GEMM_AR_README.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING


from sglang.srt.environ import envs

if TYPE_CHECKING:
    from sglang.srt.layers.linear import RowParallelLinear

logger = logging.getLogger(__name__)

_INITIALIZED = False
_ENABLED = False




def maybe_wrap_o_proj(o_proj: RowParallelLinear) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")
