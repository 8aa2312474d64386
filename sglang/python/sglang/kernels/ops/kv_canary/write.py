from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang.kernels.ops.kv_canary.verify import (
    VerifyOrWriteContext,
    )



@dataclass(frozen=True, slots=True, kw_only=True)
class WritePlan:
    """Write plan consumed by launch_canary_write_kernel: per-token slot indices + per-req metadata.

    Fully per-req — no per-token tile. launch_canary_write_kernel uses write_offsets to map each thread's
    (req, j) into a flat index i, then reads token-level data from input_ids / positions /
    out_cache_loc[i] directly.
    SWA translation of per-token slots is done **host-side by the caller** (typically the endpoint) before
    invoking launch_canary_write_kernel — the kernel is SWA-agnostic and only understands "slot ≥ 0 ⇒ write;
    slot < 0 ⇒ skip this entry". Only the chain-seed slot (a per-req gather from req_to_token at plan time)
    is SWA-translated by the plan kernel and lives in write_seed_slot_indices.

    Req r's write entries occupy flat indices [write_offsets[r], write_offsets[r+1]). seed_slot_idx == -1 means
    K_req_old == 0 (anchor on CANARY_CHAIN_ANCHOR).

    Fields:
        write_offsets: Exclusive prefix-sum offsets indexing into ForwardBatch's input_ids / positions /
            out_cache_loc, shape [write_req_capacity + 1], int64. write_offsets[0] == 0;
            write_offsets[write_num_valid_reqs[0]] == total_write_entries.
        write_seed_slot_indices: Chain-seed slot per write req, shape [write_req_capacity], int64. Already
            SWA-translated. -1 = no prefix (chain anchors on CANARY_CHAIN_ANCHOR).
        write_num_valid_reqs: Active write-req count, shape [1], int32. launch_canary_write_kernel skips blocks
            with block_id >= write_num_valid_reqs[0].
    """

    write_offsets: torch.Tensor
    write_seed_slot_indices: torch.Tensor
    write_num_valid_reqs: torch.Tensor

    @classmethod
    def allocate(
        cls,
        *,
        write_req_capacity: int,
        device: torch.device,
    ) -> WritePlan:
        raise NotImplementedError('slim removed the body of WritePlan.allocate: it never ran in any recording (see sglang/REMOVED.md)')

def launch_canary_write_kernel(
    *,
    context: VerifyOrWriteContext,
    plan: WritePlan,
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    out_cache_loc: torch.Tensor,
    enable_write_input_assert: bool,
    expected_input_tokens: torch.Tensor | None,
    expected_input_positions: torch.Tensor | None,
) -> None:
    raise NotImplementedError('slim removed the body of launch_canary_write_kernel: it never ran in any recording (see sglang/REMOVED.md)')


