"""Triton kernel for writing MXFP8 scale factors in interleaved layout.

When page_size=128 and sf_vec_size=32, FA4 expects scale factors in the
BlockScaledBasicChunk atom layout: [num_pages, nheads, 32, 4, 4].

The interleave mapping for a token at page offset `t` (0-127), head `h`,
scale index `s` (0-3) is:

    output[page, h, t % 32, t // 32, s]

Linear offset: (page_offset % 32) * 16 + (page_offset // 32) * 4 + scale_idx

The 4 scales per (token, head) are contiguous in both input and output,
so we vectorize as u32 loads/stores (4 bytes at a time).
"""

import torch


def store_sf_interleaved(
    sf_in: torch.Tensor,  # [num_tokens, nheads, sf_dim] e8m0
    sf_out: torch.Tensor,  # [num_pages, nheads, 32, 4, 4] e8m0
    loc: torch.Tensor,  # [num_tokens] int64
    page_size: int = 128,
):
    raise NotImplementedError('slim removed the body of store_sf_interleaved: it never ran in any recording (see sglang/REMOVED.md)')
