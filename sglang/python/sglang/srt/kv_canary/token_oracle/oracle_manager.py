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


    def sample_next_tokens(
        self, *, generalized_req_ids: torch.Tensor, logits_positions: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")


def _build_generalized_req_id_per_token(
    *,
    forward_batch: ForwardBatch,
    num_tokens: int,
    generalized_req_ids_per_row: torch.Tensor,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")




def select_generalized_req_ids(
    *,
    vanilla_req_ids: torch.Tensor,
    bootstrap_room_ids_int: torch.Tensor | None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
