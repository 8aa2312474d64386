from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Optional

from sglang.srt.dllm.config import DllmConfig
from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
from sglang.srt.managers.schedule_policy import PrefillAdder
from sglang.srt.runtime_context import get_exec

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sglang.srt.managers.scheduler import GenerationBatchResult, Scheduler


class SchedulerDllmMixin:
    def init_diffusion_llm(self: Scheduler):
        self.dllm_config = (
            DllmConfig.from_server_args(self.server_args)
            if get_exec().dllm.dllm_algorithm is not None
            else None
        )
        self.dllm_manager = DllmManager(dllm_config=self.dllm_config)

    def get_new_batch_dllm(
        self: Scheduler, running_batch: ScheduleBatch
    ) -> Optional[ScheduleBatch]:
        raise NotImplementedError('slim removed the body of SchedulerDllmMixin.get_new_batch_dllm: it never ran in any recording (see sglang/REMOVED.md)')

    def process_batch_result_dllm(
        self: Scheduler,
        batch: ScheduleBatch,
        result: GenerationBatchResult,
    ):
        raise NotImplementedError('slim removed the body of SchedulerDllmMixin.process_batch_result_dllm: it never ran in any recording (see sglang/REMOVED.md)')

class DllmManager:
    """
    Manager for Diffusion LLM request scheduling.

    Maintains two queues:
    - waiting_queue: The requests waiting to be scheduled with max running requests limit
    - staging_queue: Requests allocated resources by PrefillAdder
    """

    def __init__(self, dllm_config: Optional[DllmConfig] = None):
        self.dllm_config = dllm_config
        self.max_running_reqs = (
            dllm_config.max_running_requests if dllm_config is not None else 1
        )
        self.waiting_queue: List[Req] = []
        self.staging_queue: List[Req] = []

    def any_staging_reqs(self) -> bool:
        """Check if there are requests in staging queue."""
        return self.dllm_config is not None and len(self.staging_queue) > 0

    def is_empty(self) -> bool:
        raise NotImplementedError('slim removed the body of DllmManager.is_empty: it never ran in any recording (see sglang/REMOVED.md)')

    def filter_finished_reqs(self) -> None:
        raise NotImplementedError('slim removed the body of DllmManager.filter_finished_reqs: it never ran in any recording (see sglang/REMOVED.md)')

    def pop_aborted_reqs(self, abort_all: bool, rid: str) -> List[Req]:
        raise NotImplementedError('slim removed the body of DllmManager.pop_aborted_reqs: it never ran in any recording (see sglang/REMOVED.md)')

