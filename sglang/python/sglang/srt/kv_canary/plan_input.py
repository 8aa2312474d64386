from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanInput:
    """Pre-staged input to launch_canary_plan_kernels for the per-forward path.

    All tensors live on device.

    Fields:
        req_pool_indices: Per-row ReqToTokenPool row index, shape [bs_capacity], int64.
            0 = padding sentinel.
        prefix_lens: Per-req prefix length already written before this step, shape
            [bs_capacity], int64. Extend → extend_prefix_lens; decode → seq_lens - 1.
        extend_seq_lens: Per-req tokens being written this step, shape [bs_capacity], int64.
            Extend length or all-ones for decode.
        req_to_verify_expected_tokens_valid_lens: Per-req snapshot length on the verify-token pool,
            shape [bs_capacity], int64. Equals
            ``len(req.origin_input_ids) + len(req.output_ids)`` at the moment ``ForwardBatch``
            was built. The plan kernel uses ``valid_lens[req_id]`` as the upper bound on
            ``sot_pos`` when gathering the expected token; everything past the snapshot
            (e.g. EAGLE draft / verify positions, or stale residue from a longer recycled
            slot owner) returns the ``-1`` sentinel and the verify kernel skips the check.
            Set only when ``CanaryConfig.enable_verify_token_assert`` is on.

    Allocated fresh per forward by :class:`SingleForwardManager`. The boundary
    ForwardBatch token/position/slot tensors must already be int64
    contiguous (upstream phase-1 hook is responsible).
    """

    req_pool_indices: torch.Tensor
    prefix_lens: torch.Tensor
    extend_seq_lens: torch.Tensor
    req_to_verify_expected_tokens_valid_lens: torch.Tensor

    def zero_(self) -> None:
        raise NotImplementedError('slim removed the body of PlanInput.zero_: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def allocate(
        cls,
        *,
        bs_capacity: int,
        device: torch.device,
    ) -> PlanInput:
        raise NotImplementedError('slim removed the body of PlanInput.allocate: it never ran in any recording (see sglang/REMOVED.md)')

