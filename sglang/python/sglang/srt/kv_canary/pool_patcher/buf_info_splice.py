from __future__ import annotations

from typing import List, Tuple


from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup
from sglang.srt.kv_canary.pool_patcher.utils import wrap_method

BufInfoTriple = Tuple[List[int], List[int], List[int]]


def patch_buf_info_method(
    pool: object,
    *,
    method_name: str,
    group: CanaryBufferGroup,
    has_v_half: bool,
    page_size: int,
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")






