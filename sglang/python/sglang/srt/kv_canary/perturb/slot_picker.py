from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional


if TYPE_CHECKING:
    from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


@dataclass(frozen=True, slots=True, kw_only=True)
class ReqToTokenEntry:
    req_pool_idx: int
    position: int
    value: int
    seq_len: int = 0


def collect_active_slots(
    *,
    maybe_inaccurate_forward_batch: ForwardBatch,
    req_to_token_pool: ReqToTokenPool,
    exclude_out_cache_loc: bool = True,
) -> list[ReqToTokenEntry]:
    raise NotImplementedError("removed by slim: never run in any recording")


def pick_out_cache_loc_slot(
    *, maybe_inaccurate_forward_batch: ForwardBatch
) -> Optional[int]:
    raise NotImplementedError("removed by slim: never run in any recording")
