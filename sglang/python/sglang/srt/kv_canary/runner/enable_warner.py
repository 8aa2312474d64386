from __future__ import annotations

import logging
from typing import Optional

import torch

from sglang.srt.kv_canary.runner.future_tensor import DelayedDeviceHostHandler

logger = logging.getLogger(__name__)


class CanaryEnableWarner:
    def __init__(
        self, *, verify_capacity: int, d2h_stream: Optional[torch.cuda.Stream]
    ) -> None:
        self._verify_capacity = verify_capacity
        self._overflow_count_total: int = 0
        self._handler = DelayedDeviceHostHandler(d2h_stream=d2h_stream)


