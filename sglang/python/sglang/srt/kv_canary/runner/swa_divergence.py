from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional

import torch

from sglang.kernels.ops.kv_canary.verify import VerifyPlan
from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup, PoolKind
from sglang.srt.kv_canary.runner.future_tensor import DelayedDeviceHostHandler

if TYPE_CHECKING:
    from sglang.srt.mem_cache.allocator.swa import SWATokenToKVPoolAllocator
    from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch

logger = logging.getLogger(__name__)

_SWA_DIVERGENCE_LOG_PREFIX: str = "kv_canary_swa_divergence="
_SWA_DIVERGENCE_LINE_RE = re.compile(re.escape(_SWA_DIVERGENCE_LOG_PREFIX) + r"(\S+)")
_FULL_IDX = 0
_SWA_IDX = 1


class SwaDivergenceReporter:
    def __init__(
        self,
        *,
        device: torch.device,
        d2h_stream: torch.cuda.Stream,
        interval: int,
        swa_allocator: Optional[SWATokenToKVPoolAllocator] = None,
        req_to_token_pool: Optional[ReqToTokenPool] = None,
    ) -> None:
        self._interval = interval
        self._swa_allocator = swa_allocator
        self._req_to_token_pool = req_to_token_pool
        self._forward_ct: int = 0
        # Per-group running total of verify entries (shape ``[2]``, int32).
        self.verify_total_count_device: torch.Tensor = torch.zeros(
            2, dtype=torch.int32, device=device
        )
        self._handler = DelayedDeviceHostHandler(d2h_stream=d2h_stream)


    def step(
        self,
        *,
        outer_step_counter: int,
        maybe_inaccurate_forward_batch: Optional[ForwardBatch],
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")




@dataclass(frozen=True, slots=True, kw_only=True)
class SwaDivergenceLog:
    forward_ct: int
    verify_full: int
    verify_swa: int
    swa_full_idx_divergence: int
    swa_out_of_window_tokens: int = 0

    def format(self) -> str:
        return _SWA_DIVERGENCE_LOG_PREFIX + json.dumps(
            asdict(self), separators=(",", ":")
        )

    @classmethod
    def parse(cls, line: str) -> Optional[SwaDivergenceLog]:
        match = _SWA_DIVERGENCE_LINE_RE.search(line)
        if match is None:
            return None
        return cls(**json.loads(match.group(1)))

    @classmethod
    def find_last(cls, text: str) -> Optional[tuple[SwaDivergenceLog, str]]:
        last_match: Optional[re.Match] = None
        for match in _SWA_DIVERGENCE_LINE_RE.finditer(text):
            last_match = match
        if last_match is None:
            return None
        return cls(**json.loads(last_match.group(1))), last_match.group(0)

    @classmethod
    def find_all(cls, text: str) -> list[tuple[SwaDivergenceLog, str]]:
        return [
            (cls(**json.loads(match.group(1))), match.group(0))
            for match in _SWA_DIVERGENCE_LINE_RE.finditer(text)
        ]


def compute_swa_out_of_window_tokens(
    *,
    swa_allocator: SWATokenToKVPoolAllocator,
    req_to_token_pool: ReqToTokenPool,
    maybe_inaccurate_forward_batch: ForwardBatch,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def compute_swa_full_idx_divergence(
    *,
    swa_allocator: SWATokenToKVPoolAllocator,
    req_to_token_pool: ReqToTokenPool,
    maybe_inaccurate_forward_batch: ForwardBatch,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
