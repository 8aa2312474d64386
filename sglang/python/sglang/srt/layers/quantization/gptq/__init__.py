# SPDX-License-Identifier: Apache-2.0

from .gptq import (
    CPUGPTQConfig,
    GPTQConfig,
    GPTQLinearMethod,
    GPTQMarlinConfig,
    GPTQMarlinLinearMethod,
    GPTQMarlinMoEMethod,
    GPTQMoEMethod,
    check_marlin_format,
)

__all__ = [
    "GPTQConfig",
    "CPUGPTQConfig",
    "GPTQMarlinConfig",
    "GPTQLinearMethod",
    "GPTQMoEMethod",
    "GPTQMarlinLinearMethod",
    "GPTQMarlinMoEMethod",
    "check_marlin_format",
]
