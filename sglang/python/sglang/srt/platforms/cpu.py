"""CPU device operations for the SRT platform layer."""

import gc
from functools import cached_property
from typing import Optional

import psutil
import torch

from sglang.srt.platforms.device_mixin import (
    CpuArchEnum,
    DeviceCapability,
    DeviceMixin,
    PlatformEnum,
)
from sglang.srt.platforms.interface import SRTPlatform


class CpuDeviceMixin(DeviceMixin):
    """CPU implementation of the shared device operations."""

    _enum: PlatformEnum = PlatformEnum.CPU
    device_name: str = "cpu"
    device_type: str = "cpu"

    @cached_property
    def cpu_arch(self) -> CpuArchEnum:
        """Host CPU architecture (X86 / ARM / UNSPECIFIED), resolved once.

        First-class identity attribute parallel to ``_enum`` — callers branch
        on CPU arch through this instead of recomputing ``platform.machine()``.
        ``get_cpu_architecture()`` is process-stable, so caching is safe.
        """
        return self.get_cpu_architecture()

    def get_device_total_memory(self, device_id: int = 0) -> int:
        return int(psutil.virtual_memory().total)

    def get_current_memory_usage(
        self, device: Optional["torch.device"] = None
    ) -> float:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_device(self, local_rank: int) -> "torch.device":
        raise NotImplementedError("removed by slim: never run in any recording")

    def set_device(self, device: "torch.device") -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_device_name(self, device_id: int = 0) -> str:
        raise NotImplementedError("removed by slim: never run in any recording")


    def get_device_capability(self, device_id: int = 0) -> Optional[DeviceCapability]:
        return None

    def empty_cache(self) -> None:
        # No torch.cpu.empty_cache() exists; do a GC pass at the teardown
        # points where this is called (flush_cache, idle sleep, weight reload).
        #
        # gc.collect() caveats:
        # - the pause grows with heap size (full walk of tracked objects);
        # - it only reclaims reference cycles — refcounting already frees
        #   everything else, so it may do little;
        # - freed memory returns to the allocator, not the OS, so RSS may not
        #   drop. glibc malloc_trim would not help: it is a no-op under the
        #   tcmalloc / TBB malloc the CPU guide preloads via LD_PRELOAD. Real
        #   RSS reclaim belongs in a separate allocator-aware, benchmarked
        #   change.
        gc.collect()

    def synchronize(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")


    def get_torch_distributed_backend_str(self) -> str:
        return "gloo"


class CpuSRTPlatform(CpuDeviceMixin, SRTPlatform):
    """Default in-tree CPU SRT platform.

    supports_fp8 / support_cuda_graph / support_piecewise_cuda_graph keep the
    conservative SRTPlatform defaults (all False), so they are not repeated
    here. is_pin_memory_available is repeated for explicitness: CPU has no GPU
    to pin host memory to.
    """

    def is_pin_memory_available(self, device=None) -> bool:
        return False
