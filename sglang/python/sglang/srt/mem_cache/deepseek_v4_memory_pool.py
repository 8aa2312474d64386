from __future__ import annotations

import logging


from sglang.srt.environ import envs
from sglang.srt.mem_cache.base_swa_memory_pool import BaseSWAKVPool
from sglang.srt.utils import is_hip

logger = logging.getLogger(__name__)

_is_hip = is_hip()

ONLINE_C128 = not _is_hip and envs.SGLANG_OPT_USE_ONLINE_COMPRESS.get()


# The following kv pool follows ATOM's unified_kv kernel layout.
class DeepSeekV4TokenToKVPool(BaseSWAKVPool):

    pass
