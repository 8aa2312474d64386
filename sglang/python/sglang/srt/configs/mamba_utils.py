# Copyright 2025 SGLang Team
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
"""Common config utils for mamba2 - NemotronH, FalconH1, Qwen3Next, LFM2, etc."""

import logging
from abc import ABC
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch


logger = logging.getLogger(__name__)


@dataclass(kw_only=True, frozen=True)
class Mamba2StateDType:
    conv: torch.dtype
    temporal: torch.dtype


def mamba2_state_dtype(config=None) -> Mamba2StateDType:
    raise NotImplementedError('slim removed the body of mamba2_state_dtype: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass(kw_only=True, frozen=True)
class BaseLinearStateParams(ABC):
    dtype: Mamba2StateDType = field(default_factory=lambda: mamba2_state_dtype(None))
    layers: list[int]

    @property
    def mamba_cache_per_req(self) -> int:
        conv_numel = int(
            np.sum([np.prod(conv_shape) for conv_shape in self.shape.conv])
        )

        ssm_numel = int(np.prod(self.shape.temporal))
        return (
            conv_numel * self.dtype.conv.itemsize
            + ssm_numel * self.dtype.temporal.itemsize
        ) * len(self.layers)

    @property
    def is_kda(self) -> bool:
        """KDA per-K-channel gate vs GDN/Mamba2 per-head scalar gate. Selects
        the ReplaySSM ring ``g_cache`` layout ([.., L] scalar vs [.., L, K]
        per-K) and the gate-generic decode kernel's ``IS_KDA`` path."""
        return False


@dataclass(kw_only=True, frozen=True)
class Mamba2StateShape:
    conv: list[tuple[int, int]]
    temporal: tuple[int, int, int]

    # Conv tuples read (dim, K-1) — the window axis is last, which the
    # deduplicated conv-intermediate layout requires.
    disable_conv_window_dedup: bool = False

    intermediate_size: int
    conv_dim: int
    ssm_state_size: int
    num_heads: int
    head_dim: int
    state_size: int
    conv_kernel: int
    # Number of key/group heads after TP sharding (== runtime `H` the packed
    # GDN kernels infer from `mixed_qkv`). Used by the GDN ReplaySSM ring
    # buffer (k_cache) to size/stride exactly like the kernel expects.
    num_k_heads_per_tp: int = 1
    # Full (unsharded) conv sub-block dims, e.g. GDN's [key_dim, key_dim,
    # value_dim] for conv_state == cat([query, key, value]). Each sub-block is
    # head-sharded INDEPENDENTLY across attn-TP, so PD transfer across different
    # attn_tp_size must slice per sub-block. None when the single contiguous
    # slice already matches the layout (e.g. standard Mamba2 conv order differs).
    conv_shard_groups: Optional[List[int]] = None

    @staticmethod
    def create(
        *,
        tp_world_size: int,
        intermediate_size: int,
        n_groups: int,
        num_heads: int,
        head_dim: int,
        state_size: int,
        conv_kernel: int,
        conv_shard_groups: Optional[List[int]] = None,
    ) -> "Mamba2StateShape":
        # The q/k projections are sharded by `num_k_heads // tp` heads (the
        # ORIGINAL n_groups, before the conv head-shard extension below), so the
        # runtime `H` the packed kernels see equals divide(n_groups, tp). Only
        # meaningful (and only consumed) for the GDN ReplaySSM path, which
        # requires evenly divisible heads; fall back to ceil-div otherwise.
        raise NotImplementedError('slim removed the body of Mamba2StateShape.create: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass(kw_only=True, frozen=True)
class Mamba2CacheParams(BaseLinearStateParams):
    shape: Mamba2StateShape


