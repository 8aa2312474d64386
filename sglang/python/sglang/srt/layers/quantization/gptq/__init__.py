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
from .schemes import (
    GPTQIntelAMXLinearScheme,
    GPTQIntelAMXMoEScheme,
    GPTQLinearScheme,
    GPTQMarlinLinearScheme,
    GPTQMarlinMoEScheme,
    )

__all__ = [
    "GPTQConfig",
    "CPUGPTQConfig",
    "GPTQMarlinConfig",
    "GPTQLinearMethod",
    "GPTQMoEMethod",
    "GPTQMarlinLinearMethod",
    "GPTQMarlinMoEMethod",
    "GPTQLinearScheme",
    "GPTQIntelAMXLinearScheme",
    "GPTQIntelAMXMoEScheme",
    "GPTQMarlinLinearScheme",
    "GPTQMarlinMoEScheme",
    "check_marlin_format",
]
