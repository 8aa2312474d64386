from __future__ import annotations

import torch

from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup


def attach_mha(
    *,
    pool: object,
    device: torch.device,
    read_bytes: int,
    kv_token_id_vs_position_offset: int,
) -> tuple[CanaryBufferGroup, ...]:
    raise NotImplementedError('slim removed the body of attach_mha: it never ran in any recording (see sglang/REMOVED.md)')
