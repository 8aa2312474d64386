"""Flip the first byte of a slot currently being used by an active req.

Detection should come from per-forward verify (HEAD/TAIL kernel), NOT from
sweep. Designed to surface CUDA-graph-idle-class bugs where production reads
a slot whose KV byte was silently overwritten.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional


from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup, PoolKind
from sglang.srt.kv_canary.perturb.config import (
    PerturbConfig,
    require_target_group_kind,
)
from sglang.srt.kv_canary.perturb.slot_picker import (
    ReqToTokenEntry,
    collect_active_slots,
)
from sglang.srt.kv_canary.perturb.utils import (
    WarmupGate,
    flip_first_byte_in_source,
    pick_target_group,
    should_run_perturbation,
)

if TYPE_CHECKING:
    from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch

logger = logging.getLogger(__name__)


def run(
    *,
    maybe_inaccurate_forward_batch: Optional[ForwardBatch],
    config: PerturbConfig,
    req_to_token_pool: ReqToTokenPool,
    buffer_groups: tuple[CanaryBufferGroup, ...],
    swa_window_size: int,
    warmup_gate: WarmupGate,
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


