from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple


from sglang.srt.managers.io_struct import (
    CheckWeightsReqInput,
    DestroyWeightsUpdateGroupReqInput,
    GetWeightsByNameReqInput,
    InitWeightsUpdateGroupReqInput,
    ReleaseMemoryOccupationReqInput,
    ResumeMemoryOccupationReqInput,
    UpdateWeightFromDiskReqInput,
    UpdateWeightsFromDistributedReqInput,
    UpdateWeightsFromIPCReqInput,
    UpdateWeightsFromTensorReqInput,
    )

logger = logging.getLogger(__name__)


@dataclass(kw_only=True, slots=True)
class SchedulerWeightUpdaterManager:
    tp_worker: Any
    draft_worker: Any
    tp_cpu_group: Any
    memory_saver_adapter: Any
    flush_cache: Callable[..., bool]
    is_fully_idle: Callable[..., bool]
    scheduler: Optional[Any] = None
    metrics_collector: Optional[Any] = None
    offload_tags: set = field(default_factory=set)
    stashed_model_static_state: Any = None

    def update_weights_from_disk(self, recv_req: UpdateWeightFromDiskReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.update_weights_from_disk: it never ran in any recording (see sglang/REMOVED.md)')

    def init_weights_update_group(self, recv_req: InitWeightsUpdateGroupReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.init_weights_update_group: it never ran in any recording (see sglang/REMOVED.md)')

    def destroy_weights_update_group(
        self,
        recv_req: DestroyWeightsUpdateGroupReqInput,
    ):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.destroy_weights_update_group: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_distributed(
        self,
        recv_req: UpdateWeightsFromDistributedReqInput,
    ) -> Tuple[bool, str]:
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.update_weights_from_distributed: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_tensor(self, recv_req: UpdateWeightsFromTensorReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.update_weights_from_tensor: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_ipc(self, recv_req: UpdateWeightsFromIPCReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.update_weights_from_ipc: it never ran in any recording (see sglang/REMOVED.md)')

    def get_weights_by_name(self, recv_req: GetWeightsByNameReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.get_weights_by_name: it never ran in any recording (see sglang/REMOVED.md)')

    def release_memory_occupation(self, recv_req: ReleaseMemoryOccupationReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.release_memory_occupation: it never ran in any recording (see sglang/REMOVED.md)')

    def resume_memory_occupation(self, recv_req: ResumeMemoryOccupationReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.resume_memory_occupation: it never ran in any recording (see sglang/REMOVED.md)')

    def check_weights(self, recv_req: CheckWeightsReqInput):
        raise NotImplementedError('slim removed the body of SchedulerWeightUpdaterManager.check_weights: it never ran in any recording (see sglang/REMOVED.md)')

