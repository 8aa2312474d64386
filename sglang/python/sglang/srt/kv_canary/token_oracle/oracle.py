from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class TokenOracle(Protocol):
    """Deterministic (generalized_req_id, position) -> token_id mapping."""

    def expected_tokens(
        self, *, generalized_req_ids: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HashOracle:
    """token_id = splitmix64(generalized_req_id XOR position) % vocab_size."""

    vocab_size: int

    def expected_tokens(
        self, *, generalized_req_ids: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of HashOracle.expected_tokens: it never ran in any recording (see sglang/REMOVED.md)')


_C1: int = -4658895280553007687  # 0xBF58476D1CE4E5B9 as signed int64
_C2: int = -7723592293110705685  # 0x94D049BB133111EB as signed int64


