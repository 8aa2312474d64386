"""Swap two requests' sampled next tokens at the sampler exit.

KV path is untouched, so kv_canary KV-side fail_reasons stay silent. The
token-oracle input check downstream MUST report fail_reason=write_token — this
validates that the input-check link is genuinely active.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch

from sglang.srt.environ import envs

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NextTokenSwapConfig:
    prob: float
    warmup_steps: int

    @classmethod
    def from_env(cls) -> NextTokenSwapConfig:
        return cls(
            prob=envs.SGLANG_KV_CANARY_PERTURB_NEXT_TOKEN_SWAP_PROB.get(),
            warmup_steps=envs.SGLANG_KV_CANARY_PERTURB_WARMUP_STEPS.get(),
        )


_config: Optional[NextTokenSwapConfig] = None
_step_counter: int = 0




def maybe_perturb_swap_next_tokens(
    batch_next_token_ids: torch.Tensor,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
