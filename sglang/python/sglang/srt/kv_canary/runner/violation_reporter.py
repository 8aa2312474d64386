from __future__ import annotations

import logging

from sglang.kernels.ops.kv_canary.consts import FailReason
from sglang.kernels.ops.kv_canary.verify import CanaryLaunchTag
from sglang.srt.kv_canary.config import CanaryConfig, CanaryMode
from sglang.srt.kv_canary.state import CanaryDeviceState

logger = logging.getLogger(__name__)

_WRITE_BITS = FailReason.WRITE_TOKEN_MISMATCH | FailReason.WRITE_POSITION_MISMATCH
_TOKEN_BITS = FailReason.WRITE_TOKEN_MISMATCH | FailReason.VERIFY_TOKEN_MISMATCH




class ViolationReporter:
    def __init__(
        self,
        *,
        config: CanaryConfig,
        device_state: CanaryDeviceState,
    ) -> None:
        self._config = config
        self._device_state = device_state
        self._raised: bool = False
        self._last_logged_write_index: int = 0

    @property
    def is_raised(self) -> bool:
        return self._raised





