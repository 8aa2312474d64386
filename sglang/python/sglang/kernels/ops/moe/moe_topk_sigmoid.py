from __future__ import annotations

from typing import Optional

import torch




def topk_sigmoid(
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    gating_output: torch.Tensor,
    renormalize: bool = False,
    correction_bias: Optional[torch.Tensor] = None,
    routed_scaling_factor: float = 1.0,
    num_fused_shared_experts: int = 0,
) -> None:
    raise NotImplementedError('slim removed the body of topk_sigmoid: it never ran in any recording (see sglang/REMOVED.md)')
