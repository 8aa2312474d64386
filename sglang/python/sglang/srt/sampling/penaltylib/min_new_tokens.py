import torch

from sglang.srt.sampling.penaltylib.orchestrator import _BatchedPenalizer


class BatchedMinNewTokensPenalizer(_BatchedPenalizer):
    """
    Min new tokens penalizer penalizes tokens based on the length of the output.
    """

    def _is_required(self) -> bool:
        return any(
            req.sampling_params.min_new_tokens > 0 for req in self.orchestrator.reqs()
        )



    def _apply(self, logits: torch.Tensor):
        # Boolean-mask indexing (logits[mask]) is data-dependent and forces a
        # device-to-host sync every decode step; torch.where is a plain
        # elementwise select with no sync (and no -inf*0=nan).
        mask = self.len_output_tokens < self.min_new_tokens
        logits.add_(torch.where(mask, self.stop_token_penalties, 0.0))



    # Explicit resource cleanup to aid GC and free CUDA memory promptly
    def _teardown(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")
