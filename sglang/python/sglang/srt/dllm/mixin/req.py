from __future__ import annotations

import enum
from array import array
from typing import TYPE_CHECKING, Optional

from sglang.srt.dllm.config import DllmConfig

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req


class DllmReqPhase(str, enum.Enum):
    STAGING_PREFILL = "staging_prefill"
    STAGING_DECODE = "staging_decode"
    INCOMING_PREFILL = "incoming_prefill"
    INCOMING_DECODE = "incoming_decode"


class ReqDllmMixin:
    def init_diffusion_llm(self: Req, dllm_config: DllmConfig):
        self.dllm_phase: Optional[DllmReqPhase] = None
        self.dllm_incomplete_ids = array("q")
        self.dllm_algo_state = None
        self.dllm_block_offset = 0
        self.dllm_config = dllm_config

        if self.dllm_config is not None:
            if len(self.origin_input_ids) < self.dllm_config.block_size:
                self.dllm_phase = DllmReqPhase.INCOMING_DECODE
            else:
                self.dllm_phase = DllmReqPhase.INCOMING_PREFILL

    def is_dllm(self: Req) -> bool:
        return self.dllm_config is not None

    def determine_dllm_phase(self: Req):
        raise NotImplementedError('slim removed the body of ReqDllmMixin.determine_dllm_phase: it never ran in any recording (see sglang/REMOVED.md)')

    def _init_fill_ids_for_dllm(self: Req):
        raise NotImplementedError('slim removed the body of ReqDllmMixin._init_fill_ids_for_dllm: it never ran in any recording (see sglang/REMOVED.md)')

    def _update_block_offset_for_dllm(self):
        raise NotImplementedError('slim removed the body of ReqDllmMixin._update_block_offset_for_dllm: it never ran in any recording (see sglang/REMOVED.md)')
