import torch


def clear_unaccepted_c128_draft_states(
    state: torch.Tensor,
    req_pool_indices: torch.Tensor,
    seq_lens: torch.Tensor,
    accept_lens: torch.Tensor,
    *,
    ring_size: int,
    num_draft_tokens: int,
) -> None:
    raise NotImplementedError('slim removed the body of clear_unaccepted_c128_draft_states: it never ran in any recording (see sglang/REMOVED.md)')
