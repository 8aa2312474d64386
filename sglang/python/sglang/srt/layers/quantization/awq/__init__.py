# SPDX-License-Identifier: Apache-2.0

from sglang.kernels.ops.quantization.awq_triton import (
    awq_dequantize_triton,
)

from .awq import (
    AWQConfig,
    AWQCPUConfig,
    AWQLinearMethod,
    AWQMarlinConfig,
    )

__all__ = [
    "AWQConfig",
    "AWQCPUConfig",
    "AWQMarlinConfig",
    "AWQLinearMethod",
    "awq_dequantize_triton",
]
