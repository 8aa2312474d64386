"""XPU device operations for the SRT platform layer."""

import logging
from typing import Optional

import torch

from sglang.srt.platforms.device_mixin import (
    DeviceCapability,
    DeviceMixin,
    PlatformEnum,
)
from sglang.srt.platforms.interface import SRTPlatform

logger = logging.getLogger(__name__)


class XpuDeviceMixin(DeviceMixin):
    """XPU implementation of the shared device operations."""

    _enum: PlatformEnum = PlatformEnum.XPU
    device_name: str = "xpu"
    device_type: str = "xpu"

    def get_device_total_memory(self, device_id: int = 0) -> int:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_device_total_memory: it never ran in any recording (see sglang/REMOVED.md)')

    def get_current_memory_usage(
        self, device: Optional["torch.device"] = None
    ) -> float:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_current_memory_usage: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device(self, local_rank: int) -> "torch.device":
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_device: it never ran in any recording (see sglang/REMOVED.md)')

    def set_device(self, device: "torch.device") -> None:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.set_device: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_name(self, device_id: int = 0) -> str:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_device_name: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_uuid(self, device_id: int = 0) -> str:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_device_uuid: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_capability(self, device_id: int = 0) -> DeviceCapability:
        # TODO: torch.xpu.get_device_capability
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_device_capability: it never ran in any recording (see sglang/REMOVED.md)')

    def empty_cache(self) -> None:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.empty_cache: it never ran in any recording (see sglang/REMOVED.md)')

    def synchronize(self) -> None:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.synchronize: it never ran in any recording (see sglang/REMOVED.md)')

    def get_available_memory(self, device_id: int = 0) -> tuple[int, int]:
        # TODO: simple return of torch.xpu.mem_get_info
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.get_available_memory: it never ran in any recording (see sglang/REMOVED.md)')

    def is_pin_memory_available(self, device=None) -> bool:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.is_pin_memory_available: it never ran in any recording (see sglang/REMOVED.md)')

    @classmethod
    def seed_everything(cls, seed: int | None = None) -> None:
        raise NotImplementedError('slim removed the body of XpuDeviceMixin.seed_everything: it never ran in any recording (see sglang/REMOVED.md)')


class XpuSRTPlatform(XpuDeviceMixin, SRTPlatform):
    """Default in-tree XPU SRT platform."""

    def supports_fp8(self) -> bool:
        return False

    def support_cuda_graph(self) -> bool:
        return True

    def support_piecewise_cuda_graph(self) -> bool:
        return True
