import logging
from typing import List, Tuple

import torch

from sglang.srt.utils import get_device_name, is_cuda, is_hip

_is_cuda = is_cuda()
_is_hip = is_hip()
if _is_cuda:
    from sglang.kernels.ops.quantization import per_token_group_quant

logger = logging.getLogger(__name__)


def per_token_quant_int8(x, scale_dtype=torch.float32, cal_sum=False):
    raise NotImplementedError('slim removed the body of per_token_quant_int8: it never ran in any recording (see sglang/REMOVED.md)')


def per_token_group_quant_int8(
    x: torch.Tensor,
    group_size: int,
    eps: float = 1e-10,
    dtype: torch.dtype = torch.int8,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError('slim removed the body of per_token_group_quant_int8: it never ran in any recording (see sglang/REMOVED.md)')


def sglang_per_token_group_quant_int8(
    x: torch.Tensor,
    group_size: int,
    eps: float = 1e-10,
    dtype: torch.dtype = torch.int8,
):
    raise NotImplementedError('slim removed the body of sglang_per_token_group_quant_int8: it never ran in any recording (see sglang/REMOVED.md)')


def w8a8_block_int8_matmul(
    A: torch.Tensor,
    B: torch.Tensor,
    As: torch.Tensor,
    Bs: torch.Tensor,
    block_size: List[int],
    output_dtype: torch.dtype = torch.float16,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of w8a8_block_int8_matmul: it never ran in any recording (see sglang/REMOVED.md)')
