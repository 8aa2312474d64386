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


def concat_mla_k(k: torch.Tensor, k_nope: torch.Tensor, k_rope: torch.Tensor) -> None:
    raise NotImplementedError('slim removed the body of concat_mla_k: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


def concat_mla_absorb_q(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of concat_mla_absorb_q: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')
