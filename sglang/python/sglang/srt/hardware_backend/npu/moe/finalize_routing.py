"""
NPU MoE finalize routing components.

These classes reassemble expert outputs into the original token order
after the expert computation. A generic TP‑all‑gather wrapper is provided
to transparently gather the hidden dimension when needed (e.g. GGUF with
full weights).
"""

from abc import ABC, abstractmethod

import torch

from sglang.srt.distributed.communication_op import (
    tensor_model_parallel_all_gather,
)
from sglang.srt.runtime_context import get_parallel


class BaseFinalizeRouting(ABC):
    @abstractmethod
    def _finalize_routing(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        expanded_row_idx: torch.Tensor,
        topk_ids: torch.Tensor,
    ) -> torch.Tensor: ...


# ---------------------------------------------------------------------------
# Concrete implementations (unchanged)
# ---------------------------------------------------------------------------
class NPUFinalizeRouting(BaseFinalizeRouting):
    def __init__(self, drop_pad_mode: int = 0):
        self.drop_pad_mode = drop_pad_mode

    def _finalize_routing(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        expanded_row_idx: torch.Tensor,
        topk_ids: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")




# ---------------------------------------------------------------------------
# Generic TP‑all‑gather wrapper – transparently adds communication
# ---------------------------------------------------------------------------
class AllGatherFinalizeRoutingWrapper(BaseFinalizeRouting):
    """
    Wraps any finalize routing and performs an all‑gather along `dim`
    after the routing if tensor‑parallelism is active.

    This keeps the runner / permute hooks free of TP logic.
    """

    def __init__(self, inner: BaseFinalizeRouting, dim: int = -1):
        self.inner = inner
        self.dim = dim

    def _finalize_routing(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        expanded_row_idx: torch.Tensor,
        topk_ids: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")
