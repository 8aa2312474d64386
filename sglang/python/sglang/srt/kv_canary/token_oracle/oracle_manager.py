from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.srt.kv_canary.expected_inputs import ExpectedInputs
from sglang.srt.kv_canary.token_oracle.oracle import TokenOracle

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class TokenOracleManager:
    def __init__(self, *, oracle: TokenOracle) -> None:
        self.oracle = oracle








def select_generalized_req_ids(
    *,
    vanilla_req_ids: torch.Tensor,
    bootstrap_room_ids_int: torch.Tensor | None,
) -> torch.Tensor:
    if bootstrap_room_ids_int is None:
        return vanilla_req_ids

    bootstrap_room_ids_int = bootstrap_room_ids_int.to(
        device=vanilla_req_ids.device,
        dtype=torch.int64,
    )
    return torch.where(
        bootstrap_room_ids_int >= 0,
        bootstrap_room_ids_int,
        vanilla_req_ids.to(torch.int64),
    )
