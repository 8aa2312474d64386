# SPDX-License-Identifier: Apache-2.0

from .compressed_tensors_scheme import (
    CompressedTensorsMoEScheme,
)
from .compressed_tensors_w4a4_mxint4_moe import CompressedTensorsMxInt4MoE
from .compressed_tensors_wNa16 import WNA16_SUPPORTED_BITS
from .compressed_tensors_wNa16_moe import (
    CompressedTensorsWNA16MoE,
    CompressedTensorsWNA16TritonMoE,
    )

__all__ = [
    "CompressedTensorsMoEScheme",
    "CompressedTensorsWNA16MoE",
    "CompressedTensorsWNA16TritonMoE",
    "WNA16_SUPPORTED_BITS",
    "CompressedTensorsMxInt4MoE",
]
