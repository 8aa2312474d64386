"""CPU device operations for the SRT platform layer."""

from functools import cached_property
from typing import Optional

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
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_device_total_memory: it never ran in any recording (see sglang/REMOVED.md)')

    def get_current_memory_usage(
        self, device: Optional["torch.device"] = None
    ) -> float:
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_current_memory_usage: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device(self, local_rank: int) -> "torch.device":
        # local_rank is ignored: all CPU ranks share the one CPU device, so
        # there is nothing rank-specific to return. PyTorch enforces this —
        # Device::validate() asserts a CPU index must be -1 or 0 (c10/core/
        # Device.h). Per-rank isolation is done via OpenMP/numactl binding
        # (ModelRunner.init_threads_binding), not the device object.
        # TODO(zijiexia): make per-rank placement NUMA-affinity aware
        # (rank -> NUMA node) when the platform layer takes this over.
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_device: it never ran in any recording (see sglang/REMOVED.md)')

    def set_device(self, device: "torch.device") -> None:
        # Documented no-op on CPU — torch.cpu.set_device is "in CPU we do
        # nothing". Called (rather than left as ``pass``) for symmetry with
        # CudaDeviceMixin.set_device. Note this is deliberately NOT
        # torch.set_default_device("cpu"), which would flip the process-wide
        # default tensor device; per-rank CPU isolation is via OpenMP/numactl
        # binding (see get_device), not here.
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.set_device: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_name(self, device_id: int = 0) -> str:
        # Arch-only label. We deliberately avoid platform.processor(): it
        # spawns a subprocess (~ms) on some platforms (e.g. macOS) and on Linux
        # is usually empty or redundant with the arch (e.g. "x86_64: x86_64").
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_device_name: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_uuid(self, device_id: int = 0) -> str:
        # CPU has no per-device UUID; return the arch string as a stable
        # host-level identifier (matches the multimodal CpuPlatform).
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_device_uuid: it never ran in any recording (see sglang/REMOVED.md)')

    def get_device_capability(self, device_id: int = 0) -> Optional[DeviceCapability]:
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_device_capability: it never ran in any recording (see sglang/REMOVED.md)')

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
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.empty_cache: it never ran in any recording (see sglang/REMOVED.md)')

    def synchronize(self) -> None:
        # Documented no-op on CPU (no async streams to drain). Called for
        # symmetry with CudaDeviceMixin's torch.cuda.synchronize().
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.synchronize: it never ran in any recording (see sglang/REMOVED.md)')

    def get_available_memory(self, device_id: int = 0) -> tuple[int, int]:
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_available_memory: it never ran in any recording (see sglang/REMOVED.md)')

    def get_torch_distributed_backend_str(self) -> str:
        raise NotImplementedError('slim removed the body of CpuDeviceMixin.get_torch_distributed_backend_str: it never ran in any recording (see sglang/REMOVED.md)')


class CpuSRTPlatform(CpuDeviceMixin, SRTPlatform):
    """Default in-tree CPU SRT platform.

    supports_fp8 / support_cuda_graph / support_piecewise_cuda_graph keep the
    conservative SRTPlatform defaults (all False), so they are not repeated
    here. is_pin_memory_available is repeated for explicitness: CPU has no GPU
    to pin host memory to.
    """

    def is_pin_memory_available(self, device=None) -> bool:
        return False
