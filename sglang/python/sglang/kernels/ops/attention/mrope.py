"""Interleaved M-RoPE Triton kernel, migrated from
``sglang.srt.layers.rotary_embedding.mrope`` (RFC #29630, Phase 2.5).
"""

import torch


def apply_interleaved_rope_triton(x: torch.Tensor, mrope_section: list) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of apply_interleaved_rope_triton: it never ran in any recording (see sglang/REMOVED.md)')
