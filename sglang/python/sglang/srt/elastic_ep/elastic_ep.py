from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, List, Optional

import torch

from sglang.srt.distributed import parallel_state
from sglang.srt.runtime_context import get_parallel

if TYPE_CHECKING:
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.eplb.eplb_manager import EPLBManager

logger = logging.getLogger(__name__)

_SCALE_COHORT_KEY_PREFIX = "elastic_ep/scale_cohort"


def register_scale_cohort(rank_offset: int, target_ep_size: int) -> None:
    raise NotImplementedError('slim removed the body of register_scale_cohort: it never ran in any recording (see sglang/REMOVED.md)')


def get_scale_cohort_target(rank_offset: int) -> Optional[int]:
    raise NotImplementedError('slim removed the body of get_scale_cohort_target: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass
class ElasticEPState:
    active_ranks: Optional[torch.Tensor]
    last_active_ranks: Optional[torch.Tensor]
    active_ranks_cpu: Optional[torch.Tensor]
    effective_ep_size: int = 0
    pending_ep_size: Optional[int] = None
    scale_phase: str = "idle"
    last_error: Optional[str] = None
    pending_since: Optional[float] = None
    original_ep_size: int = 0
    has_scaled: bool = False
    ep_join_rank_offset: int = 0

    def sync_active_to_cpu(self):
        raise NotImplementedError('slim removed the body of ElasticEPState.sync_active_to_cpu: it never ran in any recording (see sglang/REMOVED.md)')

    def snapshot_active_to_last(self):
        raise NotImplementedError('slim removed the body of ElasticEPState.snapshot_active_to_last: it never ran in any recording (see sglang/REMOVED.md)')

    def reset(self):
        raise NotImplementedError('slim removed the body of ElasticEPState.reset: it never ran in any recording (see sglang/REMOVED.md)')


class ElasticEPStateManager:
    _instance: Optional[ElasticEPState] = None
    _on_scale: Optional[Callable[[int, int], None]] = None

def elastic_expanded_world_enabled() -> bool:
    """Return whether execution uses ranks admitted after server launch.

    Launch-time TP groups exclude ranks admitted during scale-up.
    """
    inst = ElasticEPStateManager.instance()
    if inst is None:
        return False
    if get_parallel().max_ep_size is None:
        return False
    active_target_size = inst.effective_ep_size
    if inst.pending_ep_size is not None and inst.scale_phase in (
        "configuring_data_plane",
        "syncing_new_world",
    ):
        active_target_size = inst.pending_ep_size

    return active_target_size > inst.original_ep_size


_PEER_STATE_POLL_INTERVAL_SEC = 0.01


def try_admit_scale_ranks(global_ranks: List[int]) -> bool:
    raise NotImplementedError('slim removed the body of try_admit_scale_ranks: it never ran in any recording (see sglang/REMOVED.md)')


def join_scale_process_group() -> None:
    raise NotImplementedError('slim removed the body of join_scale_process_group: it never ran in any recording (see sglang/REMOVED.md)')


def join_process_groups() -> None:
    raise NotImplementedError('slim removed the body of join_process_groups: it never ran in any recording (see sglang/REMOVED.md)')


def get_healthy_expert_location_src_rank(
    *, invoked_in_elastic_ep_rejoin_path: bool
) -> int:
    raise NotImplementedError('slim removed the body of get_healthy_expert_location_src_rank: it never ran in any recording (see sglang/REMOVED.md)')


def maybe_recover_ep_ranks(
    *,
    tp_group: parallel_state.GroupCoordinator,
    eplb_manager: EPLBManager,
    model_config: ModelConfig,
    moe_ep_rank: int,
) -> bool:
    # TODO(perf): `active_ranks.all()` on a CUDA tensor triggers host-device
    # synchronization, and this function is on the forward-path.
    # This check only runs when `--elastic-ep-backend` is enabled, so the
    # synchronization overhead does not propagate to other configs.
    # Leave for future optimization of the elastic EP path.
    raise NotImplementedError('slim removed the body of maybe_recover_ep_ranks: it never ran in any recording (see sglang/REMOVED.md)')


def maybe_rebalance_after_rank_fault(*, eplb_manager: EPLBManager) -> bool:
    raise NotImplementedError('slim removed the body of maybe_rebalance_after_rank_fault: it never ran in any recording (see sglang/REMOVED.md)')
