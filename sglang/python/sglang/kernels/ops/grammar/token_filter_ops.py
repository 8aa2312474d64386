# Copyright 2026 SGLang Team
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
"""Triton kernels for token filter operations."""

from collections import OrderedDict
from typing import List

import torch



_cached_num_sms = None
_cached_token_id_tensors: OrderedDict[tuple[int, tuple[int, ...]], torch.Tensor] = (
    OrderedDict()
)
_MAX_TOKEN_ID_TENSOR_CACHE_SIZE = 32


def _compute_grid(work_items: int):
    raise NotImplementedError('slim removed the body of _compute_grid: it never ran in any recording (see sglang/REMOVED.md)')


def set_token_filter_triton(
    vocab_mask: torch.Tensor,
    token_ids: List[int],
    batch_idx: int,
    is_allowed: bool = True,
    reset_vocab_mask: bool = True,
):
    raise NotImplementedError('slim removed the body of set_token_filter_triton: it never ran in any recording (see sglang/REMOVED.md)')
