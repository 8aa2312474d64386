from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional, Union

import torch

from sglang.kernels.ops.attention.dsa.triton_kernel import act_quant
from sglang.kernels.ops.attention.dsv4.compress_old import (
    CompressorDecodePlan,
    CompressorPrefillPlan,
    )
from sglang.srt.layers.utils.multi_platform import MultiPlatformOp
from sglang.srt.utils import is_npu

_is_npu = is_npu()

if TYPE_CHECKING:
    from sglang.srt.layers.attention.deepseek_v4_backend import DeepseekV4AttnBackend


class FusedCompressMetadata(NamedTuple):
    write_loc: torch.Tensor
    extra_data: Optional[torch.Tensor]
    plan: Union[CompressorDecodePlan, CompressorPrefillPlan]

    def copy_(self, other: FusedCompressMetadata) -> None:
        raise NotImplementedError('slim removed the body of FusedCompressMetadata.copy_: it never ran in any recording (see sglang/REMOVED.md)')


class CompressorBackendMixin:
    pass


class Compressor(MultiPlatformOp):
    pass
