# SPDX-License-Identifier: Apache-2.0

from sglang.kernels.ops.quantization.awq_triton import (
    awq_dequantize_triton,
)

from .awq import (
    AWQConfig,
    AWQCPUConfig,
    AWQLinearMethod,
    AWQMarlinConfig,
    AWQMoEMethod,
)
from .schemes import (
    AWQLinearScheme,
    AWQMarlinLinearScheme,
    AWQMoEScheme,
)

__all__ = [
    "AWQConfig",
    "AWQCPUConfig",
    "AWQMarlinConfig",
    "AWQLinearMethod",
    "AWQMoEMethod",
    "AWQLinearScheme",
    "AWQMarlinLinearScheme",
    "AWQMoEScheme",
    "awq_dequantize_triton",
]
