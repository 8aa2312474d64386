from __future__ import annotations

from enum import Enum, auto
from typing import NamedTuple, Optional

import torch

from sglang.srt.layers.moe.token_dispatcher.base import (
    BaseDispatcher,
    CombineInput,
    CombineInputFormat,
    DispatchOutput,
    DispatchOutputFormat,
)
from sglang.srt.layers.moe.topk import TopKOutput

# Block size used by pplx-kernels for FP8 block-wise scales, matching the
# DeepSeek / DeepGEMM block quantization convention.
_FP8_BLOCK_SIZE = 128

try:
    from pplx_kernels.nvshmem import PyTorchStreamWrapper  # noqa: F401

    use_pplx = True
except ImportError:
    use_pplx = False


class PplxDispatchOutput(NamedTuple):
    """PPLX EP dispatch output (masked / per-expert batched)."""

    hidden_states: torch.Tensor
    hidden_states_scale: Optional[torch.Tensor]
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor
    masked_m: torch.Tensor
    expected_m: int

    @property
    def format(self) -> DispatchOutputFormat:
        return DispatchOutputFormat.DEEPEP_LL


assert isinstance(PplxDispatchOutput, DispatchOutput)


class PplxCombineInput(NamedTuple):
    """PPLX EP combine input."""

    hidden_states: torch.Tensor
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor

    @property
    def format(self) -> CombineInputFormat:
        return CombineInputFormat.DEEPEP_LL


assert isinstance(PplxCombineInput, CombineInput)


class _Stage(Enum):
    INITIAL = auto()
    AFTER_DISPATCH_A = auto()
    AFTER_DISPATCH_B = auto()
    AFTER_COMBINE_A = auto()


class PplxDispatcher(BaseDispatcher):
    """MoE all-to-all dispatcher backed by Perplexity's pplx-kernels.

    Reuse the DEEPEP_LL dispatch/combine format so the existing masked
    expert-compute path is unchanged.
    """

    def dispatch(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ) -> DispatchOutput:
        raise NotImplementedError('slim removed the body of PplxDispatcher.dispatch: it never ran in any recording (see sglang/REMOVED.md)')

    def combine(
        self,
        combine_input: CombineInput,
    ) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of PplxDispatcher.combine: it never ran in any recording (see sglang/REMOVED.md)')

