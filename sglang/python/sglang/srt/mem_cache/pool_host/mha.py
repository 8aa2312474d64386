from __future__ import annotations

import logging


from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool
from sglang.srt.utils import is_cuda, is_hip, is_mps, is_npu, is_xpu

_is_cuda = is_cuda()
_is_hip = is_hip()
_is_npu = is_npu()
_is_xpu = is_xpu()
_is_mps = is_mps()

logger = logging.getLogger(__name__)


def get_mha_host_pool_cls(device_pool: MHATokenToKVPool) -> type:
    raise NotImplementedError('slim removed the body of get_mha_host_pool_cls: it never ran in any recording (see sglang/REMOVED.md)')
