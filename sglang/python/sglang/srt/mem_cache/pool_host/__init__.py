from sglang.srt.mem_cache.pool_host.base import HostKVCache

__all__ = [
    "HostKVCache",
]
