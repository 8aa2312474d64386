from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, List, Optional

import torch

from sglang.srt.distributed import get_world_group, parallel_state
from sglang.srt.distributed.utils import get_global_tcp_store
from sglang.srt.eplb.expert_location import broadcast_global_expert_location_metadata
from sglang.srt.managers.schedule_batch import ServerArgs
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import is_cpu, is_cuda

if TYPE_CHECKING:
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.eplb.eplb_manager import EPLBManager

logger = logging.getLogger(__name__)

_SCALE_COHORT_KEY_PREFIX = "elastic_ep/scale_cohort"


def register_scale_cohort(rank_offset: int, target_ep_size: int) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_scale_cohort_target(rank_offset: int) -> Optional[int]:
    raise NotImplementedError("removed by slim: never run in any recording")


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

    def is_active_equal_last(self) -> bool:
        return torch.equal(self.active_ranks, self.last_active_ranks)

    def sync_active_to_cpu(self):
        if self.active_ranks is not None:
            self.active_ranks_cpu = self.active_ranks.detach().cpu().clone()

    def snapshot_active_to_last(self):
        if self.active_ranks is not None:
            self.last_active_ranks = self.active_ranks.clone()

    def reset(self):
        if self.active_ranks is not None:
            # Reserved slots stay inactive until their ranks join.
            self.active_ranks.zero_()
            self.active_ranks[: self.effective_ep_size] = 1
            self.snapshot_active_to_last()
            self.sync_active_to_cpu()


class ElasticEPStateManager:
    _instance: Optional[ElasticEPState] = None
    _on_scale: Optional[Callable[[int, int], None]] = None

    @classmethod
    def instance(cls) -> ElasticEPState:
        return cls._instance

    @classmethod
    def init(cls, server_args: ServerArgs):
        raise NotImplementedError("removed by slim: never run in any recording")














    @classmethod
    def get_effective_ep_size(cls) -> int:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def get_pending_ep_size(cls) -> Optional[int]:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def get_scale_phase(cls) -> str:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def get_last_error(cls) -> Optional[str]:
        raise NotImplementedError("removed by slim: never run in any recording")




    @classmethod
    def is_scaling(cls) -> bool:
        raise NotImplementedError("removed by slim: never run in any recording")


def elastic_expanded_world_enabled() -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")




_PEER_STATE_POLL_INTERVAL_SEC = 0.01












def try_admit_scale_ranks(global_ranks: List[int]) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")






def join_scale_process_group() -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def join_process_groups() -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_healthy_expert_location_src_rank(
    *, invoked_in_elastic_ep_rejoin_path: bool
) -> int:
    raise NotImplementedError("removed by slim: never run in any recording")


def maybe_recover_ep_ranks(
    *,
    tp_group: parallel_state.GroupCoordinator,
    eplb_manager: EPLBManager,
    model_config: ModelConfig,
    moe_ep_rank: int,
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def maybe_rebalance_after_rank_fault(*, eplb_manager: EPLBManager) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")
