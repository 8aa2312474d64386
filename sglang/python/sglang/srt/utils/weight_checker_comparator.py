from typing import Iterable, NamedTuple, Optional, Tuple

import torch

from sglang.srt.layers.quantization.fp8 import Fp8LinearMethod, Fp8MoEMethod
from sglang.srt.layers.quantization.fp8_utils import (
    block_quant_dequant,
    inverse_transform_scale_ue8m0,
)
from sglang.srt.layers.quantization.modelopt_quant import (
    ModelOptFp4LinearMethod,
    ModelOptNvFp4FusedMoEMethod,
)

# chunk to avoid too high GPU memory peak
CHUNK_NUMEL = 64 * 1024 * 1024


class CompareResult(NamedTuple):
    equal: bool
    max_abs_err: float
    mean_abs_err: float
    num_exceed: int  # elements past the combined per-side tolerance


class ComparableWeight:
    """Base comparable-weight class; one subclass per precision or raw tensor."""

    def iter_chunks(self) -> Iterable[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
        raise NotImplementedError

    def dequantize(self, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
        raise NotImplementedError


class RawComparable(ComparableWeight):
    """Bitwise equal compare on raw tensor."""

def compare_weights(
    expect: ComparableWeight, actual: ComparableWeight
) -> CompareResult:
    raise NotImplementedError('slim removed the body of compare_weights: it never ran in any recording (see sglang/REMOVED.md)')


def select_comparable_weight(quant_method) -> Optional[type]:
    raise NotImplementedError('slim removed the body of select_comparable_weight: it never ran in any recording (see sglang/REMOVED.md)')
