from __future__ import annotations

from typing import TYPE_CHECKING

import torch


if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req


def compute_req_all_ids_info(
    reqs: list[Req],
) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError('slim removed the body of compute_req_all_ids_info: it never ran in any recording (see sglang/REMOVED.md)')


