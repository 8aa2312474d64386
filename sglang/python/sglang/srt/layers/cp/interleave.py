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

"""Interleave context parallel strategy shell.

For ``cp_size = 4``, each rank owns every fourth token:

    cp0: token0, token4, token8,  token12, token16, ...
    cp1: token1, token5, token9,  token13, token17, ...
    cp2: token2, token6, token10, token14, token18, ...
    cp3: token3, token7, token11, token15, token19, ...

After all-gather, tokens are restored to the original order:

    token0, token1, token2, token3, token4, token5, token6, token7, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional


from sglang.srt.layers.cp.base import (
    BaseContextParallelMetadata,
    ContextParallelStrategy,
    ContextParallelStrategyKind,
    CPAttentionBackendKind,
)


@dataclass
class InterleaveContextParallelMetadata(BaseContextParallelMetadata):
    per_rank_actual_token: Optional[List[int]] = None
    max_rank_len: Optional[List[int]] = None
    per_rank_logical_token: Optional[List[int]] = None


class InterleaveCPStrategy(ContextParallelStrategy):
    name = "interleave"
    kind = ContextParallelStrategyKind.INTERLEAVE

    def can_apply(self, num_tokens: int, forward_batch) -> bool:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.can_apply: it never ran in any recording (see sglang/REMOVED.md)')

    def build_metadata(
        self,
        num_tokens: int,
        seqs_len: Optional[List[int]],
        extend_seqs_len: Optional[List[int]] = None,
    ) -> InterleaveContextParallelMetadata:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.build_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    def shard_hidden_states(self, x: Any, forward_batch) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.shard_hidden_states: it never ran in any recording (see sglang/REMOVED.md)')

    def shard_position_ids(self, positions: Any, forward_batch) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.shard_position_ids: it never ran in any recording (see sglang/REMOVED.md)')

    def shard_local_tokens(self, input_: Any) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.shard_local_tokens: it never ran in any recording (see sglang/REMOVED.md)')

    def shard_per_request(
        self,
        extend_seqs_cpu: List[int],
        extend_seqs: Any,
    ):
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.shard_per_request: it never ran in any recording (see sglang/REMOVED.md)')

    def gather_hidden_states(
        self, x: Any, forward_batch, stream: Optional[Any] = None
    ) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.gather_hidden_states: it never ran in any recording (see sglang/REMOVED.md)')

    def gather_kv_cache(
        self, x: Any, forward_batch, stream: Optional[Any] = None
    ) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.gather_kv_cache: it never ran in any recording (see sglang/REMOVED.md)')

    def materialize_full_indexer_k_cache(self, key: Any, forward_batch) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.materialize_full_indexer_k_cache: it never ran in any recording (see sglang/REMOVED.md)')

    def run_attention(
        self,
        q: Any,
        forward_batch,
        device: Any,
        attn_fn,
        attention_backend: CPAttentionBackendKind = CPAttentionBackendKind.FLASH_ATTENTION,
        **kwargs,
    ) -> Any:
        # No-op: run_attention is the FlashAttention/zigzag dispatch hook.
        # Interleave serves the DSA backend, which runs attention itself.
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.run_attention: it never ran in any recording (see sglang/REMOVED.md)')

    def all_gather_dsa_trtllm_fp8_kv(self, forward_batch, k: Any, k_rope: Any) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.all_gather_dsa_trtllm_fp8_kv: it never ran in any recording (see sglang/REMOVED.md)')

    def materialize_full_kv(
        self,
        forward_batch,
        layer: Any = None,
        k: Any = None,
        v: Any = None,
        swa_loc: Optional[Any] = None,
    ) -> Any:
        raise NotImplementedError(
            f"{self.name} strategy does not support dense K/V materialization"
        )

    def materialize_full_mla_kv(
        self,
        forward_batch,
        layer: Any,
        k_nope: Any,
        k_rope: Any,
    ) -> Any:
        raise NotImplementedError('slim removed the body of InterleaveCPStrategy.materialize_full_mla_kv: it never ran in any recording (see sglang/REMOVED.md)')
