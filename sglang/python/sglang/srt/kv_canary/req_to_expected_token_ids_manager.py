from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.srt.utils.common import flatten_arrays_to_int64_tensor

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req


def compute_req_all_ids_info(
    reqs: list[Req],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Snapshot per-req (origin_input_ids + output_ids) as pinned CPU int64 tensors.

    Returns:
        ``(req_all_ids_flat, req_all_ids_lens)`` — both pinned CPU int64. ``flat`` is the
        flattened ``cat(r.origin_input_ids, r.output_ids) for r in reqs``; ``lens`` is
        per-req ``len(origin_input_ids) + len(output_ids)``.
    """
    parts = [arr for req in reqs for arr in (req.origin_input_ids, req.output_ids)]
    req_all_ids_flat = flatten_arrays_to_int64_tensor(
        parts, device=torch.device("cpu"), pin=True
    )
    req_all_ids_lens = torch.tensor(
        [len(req.origin_input_ids) + len(req.output_ids) for req in reqs],
        dtype=torch.int64,
        pin_memory=True,
    )
    return req_all_ids_flat, req_all_ids_lens


