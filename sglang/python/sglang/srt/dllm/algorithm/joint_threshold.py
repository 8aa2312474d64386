from typing import Any, List

import torch

from sglang.srt.dllm.algorithm.base import DllmAlgorithm
from sglang.srt.dllm.config import DllmConfig
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.utils import is_npu

_is_npu = is_npu()


def joint_threshold_update_step_vectorized(
    input_ids_1d: torch.Tensor,  # [B*blk]
    full_logits_2d: torch.Tensor,  # [B*blk, V]
    prompt_masks: torch.Tensor,  # [B, blk]
    finished: torch.Tensor,  # [B]
    post_edit_steps: torch.Tensor,  # [B]
    mask_id: int,
    blk: int,
    threshold: float,
    edit_threshold: float,
    max_post_edit_steps: int,
    penalty_lambda: float,
):
    raise NotImplementedError("removed by slim: never run in any recording")


class JointThreshold(DllmAlgorithm):
    """Joint-threshold denoising: mask-to-token (M2T) unmasking plus token-to-token
    (T2T) edits, finishing on no-change or an exhausted edit budget. Stateful (edit
    budget + prompt mask), carried across FDFO rounds via ``dllm_algo_state``.
    """

    def __init__(self, config: DllmConfig):
        super().__init__(config)
        self.threshold = config.algorithm_config.get("threshold", 0.5)
        self.edit_threshold = config.algorithm_config.get("edit_threshold", 0)
        self.max_post_edit_steps = config.algorithm_config.get(
            "max_post_edit_steps", 16
        )
        self.penalty_lambda = config.algorithm_config.get("penalty_lambda", 0)
        # NPU defaults to the batched (vectorized) path; other platforms keep the
        # upstream per-row path unless explicitly overridden via algorithm_config.
        self.vectorized_decoding = config.algorithm_config.get(
            "vectorized_decoding", _is_npu
        )
        # The sync loop advances one shared batched state in place across steps;
        # FDFO must carry state per request, so it gathers/scatters each round.
        self._use_shared_state = self.vectorized_decoding and not self.fdfo

    def max_steps(self, block_size: int) -> int:
        return block_size + self.max_post_edit_steps + 1


    def step(
        self,
        forward_batch: ForwardBatch,
        full_logits: torch.Tensor,
        states: List[Any],
    ) -> List[bool]:
        raise NotImplementedError("removed by slim: never run in any recording")





Algorithm = JointThreshold
