from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from sglang.kernels.ops.kv_canary.scatter_req_token_ids import (
    launch_scatter_req_token_ids_kernel,
)
from sglang.srt.utils.common import flatten_arrays_to_int64_tensor

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


def compute_req_all_ids_info(
    reqs: list[Req],
) -> tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def populate_req_to_expected_token_ids(
    *,
    forward_batch: ForwardBatch,
    req_to_verify_expected_tokens: Optional[torch.Tensor],
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")
