"""Fused CUDA-graph metadata update for the TRTLLM MHA backend.

`TRTLLMHAAttnBackend._apply_cuda_graph_metadata` used to rebuild the
page table(s) and seqlen buffers with ~25 small aten ops per graph
replay (index gathers, floor_divide, cumsum, dtype casts, copies).
On some CPUs that is ~0.7-1.0 ms of pure host dispatch, repeated 4x
per decode step (2 draft-decode steps + target-verify + draft-extend)
on every TP rank. The resulting per-rank CPU jitter skews the
cudaGraphLaunch across ranks and is paid as spin time inside the first
custom all-reduce of every replayed graph.

This kernel performs the whole update in ONE launch:
  - cache_seqlens[i]  = seq_lens[i] + seqlen_offset            (int32)
  - cu_seqlens_k[1:]  = cumsum(cache_seqlens)                  (int32)
  - cu_seqlens_q[1:]  = cumsum(qlens) or arange*q_stride       (optional)
  - page_table[i, p]  = req_to_token[req_pool_indices[i],
                                     p * page_size] // page_size
  - swa_page_table    = full_to_swa_mapping[token] // page_size (optional)
  - swa_out_cache_loc = full_to_swa_mapping[out_cache_loc], zero padded
                                                               (optional)
"""


# cu_seqlens_q handling inside the fused kernel
Q_MODE_NONE = 0  # cu_seqlens_q is preset (decode / target-verify)
Q_MODE_CUMSUM = 1  # cu_seqlens_q[1:] = cumsum(qlens)   (draft-extend)
Q_MODE_STRIDED = 2  # cu_seqlens_q[1:] = arange*q_stride (draft-extend v2)


def update_trtllm_mha_graph_metadata(
    *,
    req_pool_indices,
    seq_lens,
    req_to_token,
    cache_seqlens,
    cu_seqlens_k,
    page_table,
    bs: int,
    seqlen_offset: int,
    max_seq_pages: int,
    page_size: int,
    swa_mapping=None,
    swa_page_table=None,
    out_cache_loc=None,
    swa_out_cache_loc=None,
    cu_seqlens_q=None,
    qlens=None,
    q_stride: int = 0,
    q_mode: int = Q_MODE_NONE,
):
    raise NotImplementedError('slim removed the body of update_trtllm_mha_graph_metadata: it never ran in any recording (see sglang/REMOVED.md)')
