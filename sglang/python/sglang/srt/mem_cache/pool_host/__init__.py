from sglang.srt.mem_cache.pool_host.base import HostKVCache
from sglang.srt.mem_cache.pool_host.common import HostTensorAllocator

__all__ = [
    "HostKVCache",
    "HostTensorAllocator",
]
