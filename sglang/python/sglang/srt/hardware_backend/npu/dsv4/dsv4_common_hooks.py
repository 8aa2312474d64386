"""Helpers used by mem_cache/common.py to wire DSV4-NPU per-req tables.

mem_cache/common.py runs platform-agnostic alloc flow. When the model is
DSV4 on NPU, ``alloc_paged_token_slots_{extend,decode}`` already stashed the
:class:`DSV4OutCacheLoc` the allocator returned onto
``batch.out_cache_loc_dsv4``. After each ``alloc_extend`` / ``alloc_decode``
these hooks then:

  1. Read the bundle from ``batch.out_cache_loc_dsv4``.
  2. Write the per-pool slot ids into the per-req tables on the
     :class:`DSV4NPUReqToTokenPool`.

Non-DSV4 paths leave ``batch.out_cache_loc_dsv4`` None, so this module is a
no-op for them.

The disagg per-req prealloc path does not build a ``ScheduleBatch`` and so
bypasses the batch hook; it writes the same tables via
``write_dsv4_prealloc_tables`` (driven by ``dsv4_unwrap_prealloc``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req, ScheduleBatch


def dsv4_unwrap_prealloc(kv_loc, req_to_token_pool, req, prefix_len, fill_len):
    raise NotImplementedError('slim removed the body of dsv4_unwrap_prealloc: it never ran in any recording (see sglang/REMOVED.md)')


def write_dsv4_prealloc_tables(
    req_to_token_pool,
    req: Req,
    prefix_len: int,
    fill_len: int,
    bundle,
) -> None:
    raise NotImplementedError('slim removed the body of write_dsv4_prealloc_tables: it never ran in any recording (see sglang/REMOVED.md)')


def maybe_build_dsv4_verify_bundle(batch: ScheduleBatch, draft_token_num: int):
    """Build the DSV4 cache-location view for one target-verify pass.

    Spec-v2 reserves cache ahead of time, so target verify must select only the
    current draft interval from the per-request DSV4 tables instead of reusing
    the larger allocation bundle produced during decode preparation.
    """
    pool = batch.req_to_token_pool
    if not hasattr(pool, "req_to_token_c4"):
        return None
    reserve_bundle = batch.out_cache_loc_dsv4
    if reserve_bundle is None:
        return None

    req_indices = batch.req_pool_indices_cpu.tolist()
    seq_lens = batch.seq_lens_cpu.tolist()

    def flatten_interval(table: torch.Tensor, ratio: int) -> torch.Tensor:
        chunks = []
        for req_idx, seq_len in zip(req_indices, seq_lens):
            start = int(seq_len) // ratio
            end = (int(seq_len) + draft_token_num) // ratio
            if end > start:
                chunks.append(table[int(req_idx), start:end])
        return torch.cat(chunks) if chunks else table.new_empty((0,))

    return type(reserve_bundle)(
        out_full_loc=batch.out_cache_loc,
        out_swa_loc=flatten_interval(pool.req_to_token_swa, 1),
        out_c4_loc=flatten_interval(pool.req_to_token_c4, 4),
        out_c128_loc=flatten_interval(pool.req_to_token_c128, 128),
        out_c4_state_loc=flatten_interval(pool.req_to_token_c4_state, 1),
        out_c128_state_loc=flatten_interval(pool.req_to_token_c128_state, 1),
    )


def maybe_evict_dsv4_state(batch: ScheduleBatch, req: Req, pre_len: int) -> None:
    raise NotImplementedError('slim removed the body of maybe_evict_dsv4_state: it never ran in any recording (see sglang/REMOVED.md)')


def maybe_evict_dsv4_state_on_swa(
    allocator, pool, req: Req, new_swa_evicted_seqlen: int
) -> None:
    raise NotImplementedError('slim removed the body of maybe_evict_dsv4_state_on_swa: it never ran in any recording (see sglang/REMOVED.md)')


