# SPDX-License-Identifier: Apache-2.0

from .gptq import (
    CPUGPTQConfig,
    GPTQConfig,
    GPTQLinearMethod,
    GPTQMarlinConfig,
    GPTQMarlinLinearMethod,
    check_marlin_format,
)

__all__ = [
    "GPTQConfig",
    "CPUGPTQConfig",
    "GPTQMarlinConfig",
    "GPTQLinearMethod",
    "GPTQMarlinLinearMethod",
    "check_marlin_format",
]
