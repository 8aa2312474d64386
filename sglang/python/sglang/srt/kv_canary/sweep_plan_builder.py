from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from sglang.kernels.ops.kv_canary.verify import VerifyPlan
from sglang.srt.kv_canary.radix_cache_walker import walk_radix_cache_for_canary

if TYPE_CHECKING:
    from sglang.srt.mem_cache.base_prefix_cache import BasePrefixCache


def build_verify_plan_radix_sweep(
    *,
    radix_cache: BasePrefixCache,
    swa_window_size: int,
    full_to_swa_index_mapping: Optional[torch.Tensor],
    unlocked_only: bool = False,
) -> VerifyPlan:
    raise NotImplementedError("removed by slim: never run in any recording")


