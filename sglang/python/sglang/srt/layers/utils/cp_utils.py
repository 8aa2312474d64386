from dataclasses import dataclass
from typing import List

import torch

from sglang.srt.runtime_context import get_parallel, get_server_args


@dataclass
class ContextParallelMetadata:
    # Layout lists have length bs * cp_segment_num (= bs * 2 * cp_size).
    split_list: List[int] = None
    zigzag_index: List[int] = None
    cp_reverse_index: List[int] = None
    reverse_split_len: List[int] = None

    # Per-rank-aggregate lists have length cp_size.
    # max_rank_len is a list of cp_size copies of max(per_rank_actual_token),
    # kept as a list for torch.split() bucket sizes.
    per_rank_actual_token: List[int] = None
    max_rank_len: List[int] = None

    # Per-sequence FlashAttention tensors (shape [bs] or [bs+1]).
    kv_len_prev_tensor: torch.Tensor = None  # [bs] int32 CUDA
    kv_len_next_tensor: torch.Tensor = None  # [bs] int32 CUDA
    actual_seq_q_prev_tensor: torch.Tensor = None  # [bs] int32 CUDA
    actual_seq_q_next_tensor: torch.Tensor = None  # [bs] int32 CUDA
    cu_seqlens_q_prev_tensor: torch.Tensor = None  # [bs+1] int32 CUDA
    cu_seqlens_q_next_tensor: torch.Tensor = None  # [bs+1] int32 CUDA

    # Scalars derived from the per-sequence lists above.
    total_q_prev_tokens: int = 0
    total_q_next_tokens: int = 0
    max_seqlen_q_prev: int = 0
    max_seqlen_q_next: int = 0

    # Per-seq CPU lists (useful for NSA indexer and diagnostics).
    kv_len_prev_list: List[int] = None
    kv_len_next_list: List[int] = None
    actual_seq_q_prev_list: List[int] = None
    actual_seq_q_next_list: List[int] = None

    # Aggregate sum of extend_seq_lens across the batch.
    total_seq_lens: int = 0
    bs: int = 1


def is_prefill_context_parallel_enabled():
    return get_parallel().enable_prefill_context_parallel


def is_mla_prefill_cp_enabled() -> bool:
    sa = get_server_args()
    return get_parallel().enable_prefill_context_parallel and sa.use_mla_backend()


def mla_use_prefill_cp(forward_batch, mla_enable_prefill_cp=None):
    if mla_enable_prefill_cp is None:
        mla_enable_prefill_cp = is_mla_prefill_cp_enabled()
    return (
        forward_batch.attn_cp_metadata is not None
        and mla_enable_prefill_cp
        and forward_batch.forward_mode.is_context_parallel_extend()
    )


def can_cp_split(seq_len: int, cp_size: int, forward_batch):
    # Base conditions: CP must be enabled, size > 1, and this must be a
    # CP-extend (prefill) step. The seq_len // (cp_size * 2) check ensures
    # the load-balancing split into 2 * cp_size blocks is non-degenerate.
    raise NotImplementedError('slim removed the body of can_cp_split: it never ran in any recording (see sglang/REMOVED.md)')


def cp_split_and_rebuild_data(forward_batch, input_: torch.Tensor):
    raise NotImplementedError('slim removed the body of cp_split_and_rebuild_data: it never ran in any recording (see sglang/REMOVED.md)')


def cp_split_and_rebuild_position(forward_batch, positions: torch.Tensor):
    raise NotImplementedError('slim removed the body of cp_split_and_rebuild_position: it never ran in any recording (see sglang/REMOVED.md)')


def cp_all_gather_rerange_output(input_tensor, cp_size, forward_batch, stream):
    raise NotImplementedError('slim removed the body of cp_all_gather_rerange_output: it never ran in any recording (see sglang/REMOVED.md)')


def prepare_context_parallel_metadata(
    kv_len,
    cp_rank,
    cp_size,
    seqs_len,
    extend_seqs_len=None,
    device="cuda",
):
    raise NotImplementedError('slim removed the body of prepare_context_parallel_metadata: it never ran in any recording (see sglang/REMOVED.md)')
