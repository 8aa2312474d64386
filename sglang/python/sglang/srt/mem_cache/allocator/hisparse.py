

from sglang.srt.mem_cache.allocator.base import BaseTokenToKVPoolAllocator


class HiSparseTokenToKVPoolAllocator(BaseTokenToKVPoolAllocator):
    pass


class DeepSeekV4HiSparseTokenToKVPoolAllocator(BaseTokenToKVPoolAllocator):

    pass
