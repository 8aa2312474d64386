# Copyright 2023-2026 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================

"""Group accessors, LSE-merge and all-gather collectives for decode CP (DCP).

The two LSE-merge variants kept separate (bodies are backend-forced, see
PR #25090 vs #14194):
  - cp_lse_ag_out_rs_mha: torch / natural-log logsumexp / all-reduce + head slice
  - cp_lse_ag_out_rs_mla: Triton (log2/exp2) correction / reduce-scatter
"""

from typing import Optional

import torch

from sglang.kernels.ops.attention.dcp_kernels import (
    CPTritonContext,
    )
from sglang.srt.distributed.parallel_state import GroupCoordinator


def dcp_enabled() -> bool:
    raise NotImplementedError('slim removed the body of dcp_enabled: it never ran in any recording (see sglang/REMOVED.md)')


def cp_lse_ag_out_rs_mha(
    cp_attn_out: torch.Tensor,
    cp_attn_lse: torch.Tensor,
    cp_group: GroupCoordinator,
    return_lse: bool = False,
):
    raise NotImplementedError('slim removed the body of cp_lse_ag_out_rs_mha: it never ran in any recording (see sglang/REMOVED.md)')


def cp_lse_ag_out_rs_mla(
    cp_attn_out: torch.Tensor,
    cp_attn_lse: torch.Tensor,
    cp_group: GroupCoordinator,
    ctx: Optional[CPTritonContext] = None,
    is_lse_base_on_e: bool = False,
):
    raise NotImplementedError('slim removed the body of cp_lse_ag_out_rs_mla: it never ran in any recording (see sglang/REMOVED.md)')


def _all_gather_dcp_kv_cache(kv_a: torch.Tensor):
    raise NotImplementedError('slim removed the body of _all_gather_dcp_kv_cache: it never ran in any recording (see sglang/REMOVED.md)')


def all_gather_kv_cache_for_mha_chunk_extend(
    kv_a: torch.Tensor,
    k_pe: torch.Tensor,
    prefix_kv_lens_cpu: torch.Tensor,
    prefix_starts_cpu: torch.Tensor = None,
):
    raise NotImplementedError('slim removed the body of all_gather_kv_cache_for_mha_chunk_extend: it never ran in any recording (see sglang/REMOVED.md)')


def all_gather_kv_cache_for_mha_extend(
    token_to_kv_pool,
    attn_mqa,
    dcp_local_prefix_kv_indices,
    seq_lens,
    extend_prefix_lens,
    extend_prefix_lens_cpu: list[int],
    extend_seq_lens,
    kv_a: torch.Tensor,
    k_pe: torch.Tensor,
):
    raise NotImplementedError('slim removed the body of all_gather_kv_cache_for_mha_extend: it never ran in any recording (see sglang/REMOVED.md)')


def all_gather_q_for_mla_decode(
    q_nope_out: torch.Tensor,
    q_pe: torch.Tensor,
):
    raise NotImplementedError('slim removed the body of all_gather_q_for_mla_decode: it never ran in any recording (see sglang/REMOVED.md)')


def all_gather_kv_cache_for_mla_extend(
    token_to_kv_pool,
    attn_mqa,
    extend_prefix_lens_cpu: list[int],
    dcp_local_prefix_kv_indices,
    dcp_extend_prefix_lens_sum,
    dcp_kv_buffer,
    kv_lora_rank,
    k_nope,
    k_pe,
):
    raise NotImplementedError('slim removed the body of all_gather_kv_cache_for_mla_extend: it never ran in any recording (see sglang/REMOVED.md)')


# all gather kv cache and re-org to query orders
# ---------------------------------------------------------------------------
# A2A communication backend for DCP decode (alternative to AG+RS above): exchange
# per-head partial outputs + LSEs across DCP ranks, then combine locally with the
# Triton LSE kernel. fi_a2a delegates the exchange to FlashInfer MNNVL (#2951).
# ---------------------------------------------------------------------------

# Per-process singleton: MNNVL workspace + this rank's cp position. Populated
# once, pre-CUDA-graph-capture, by init_fi_a2a_workspace().
_FI_A2A_STATE: Optional[dict] = None


def init_fi_a2a_workspace(cp_group: "GroupCoordinator") -> None:
    # Call once per process BEFORE CUDA-graph capture: the FlashInfer init syncs
    # the stream and barriers cross-rank, neither of which is capturable.
    raise NotImplementedError('slim removed the body of init_fi_a2a_workspace: it never ran in any recording (see sglang/REMOVED.md)')


def dcp_a2a_lse_reduce(
    cp_attn_out: torch.Tensor,
    cp_attn_lse: torch.Tensor,
    cp_group: "GroupCoordinator",
    is_lse_base_on_e: bool = True,
    cuda_graph_buffers: Optional[dict] = None,
    comm_backend: str = "a2a",
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of dcp_a2a_lse_reduce: it never ran in any recording (see sglang/REMOVED.md)')


