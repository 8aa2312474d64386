from typing import List

import torch



def block_dequant(
    x_q_block: torch.Tensor,
    x_s: torch.Tensor,
    block_size: List[int],
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of block_dequant: it never ran in any recording (see sglang/REMOVED.md)')
