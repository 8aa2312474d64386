from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING


from sglang.kernels.ops.kv_canary.verify import CanaryLaunchTag
from sglang.srt.environ import envs
from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup
from sglang.srt.kv_canary.capacities import CanaryLaunchCapacities
from sglang.srt.kv_canary.config import CanaryConfig
from sglang.srt.kv_canary.perturb.config import PerturbConfig
from sglang.srt.kv_canary.single_forward_manager.manager import (
    SingleForwardManager,
    )
from sglang.srt.kv_canary.token_oracle.oracle_manager import TokenOracleManager

if TYPE_CHECKING:
    from sglang.srt.mem_cache.allocator.swa import SWATokenToKVPoolAllocator
    from sglang.srt.mem_cache.base_prefix_cache import BasePrefixCache
    from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch

logger = logging.getLogger(__name__)


class CanaryManager:
    pass


@contextmanager
def context_tuple(ctx_a, ctx_b):
    raise NotImplementedError('slim removed the body of context_tuple: it never ran in any recording (see sglang/REMOVED.md)')
