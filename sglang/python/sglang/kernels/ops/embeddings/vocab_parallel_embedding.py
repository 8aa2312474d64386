"""Fused Triton vocabulary-parallel embedding lookup."""

import torch


def vocab_parallel_embedding(
    input_: torch.Tensor,
    weight: torch.Tensor,
    org_vocab_start_index: int,
    org_vocab_end_index: int,
    num_org_vocab_padding: int,
    added_vocab_start_index: int,
    added_vocab_end_index: int,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of vocab_parallel_embedding: it never ran in any recording (see sglang/REMOVED.md)')
