from __future__ import annotations

from typing import (
    Tuple,
    TypeAlias,
    Union,
)

import torch

from sglang.kernels.ops.quantization.fp8_kernel import is_fp8_fnuz



FP8_DTYPE = torch.float8_e4m3fnuz if is_fp8_fnuz() else torch.float8_e4m3fn


IndexerQuery: TypeAlias = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


_arange_cache = {}


class C4IndexerBackendMixin:
    pass


