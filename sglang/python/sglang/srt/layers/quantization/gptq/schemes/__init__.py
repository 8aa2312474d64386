# SPDX-License-Identifier: Apache-2.0

from .gptq_cpu import GPTQIntelAMXLinearScheme, GPTQIntelAMXMoEScheme
from .gptq_linear import GPTQLinearScheme
from .gptq_marlin import GPTQMarlinLinearScheme
from .gptq_moe import GPTQMarlinMoEScheme
from .gptq_scheme import GPTQLinearSchemeBase, GPTQMoESchemeBase

__all__ = [
    "GPTQLinearSchemeBase",
    "GPTQMoESchemeBase",
    "GPTQLinearScheme",
    "GPTQIntelAMXLinearScheme",
    "GPTQMarlinLinearScheme",
    "GPTQIntelAMXMoEScheme",
    "GPTQMarlinMoEScheme",
]
