# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.srt.layers.moe import MoeRunnerConfig

from .awq_linear import AWQLinearScheme
from .awq_moe import AWQMoEScheme

if TYPE_CHECKING:
    from sglang.srt.layers.quantization.awq.awq import AWQConfig

__all__ = ["AWQIntelAMXLinearScheme", "AWQIntelAMXMoEScheme"]


class AWQIntelAMXLinearScheme(AWQLinearScheme):
    """Linear scheme for AWQ on Intel CPU with AMX."""

    def _init_kernel(self, quant_config: AWQConfig):
        raise NotImplementedError('slim removed the body of AWQIntelAMXLinearScheme._init_kernel: it never ran in any recording (see sglang/REMOVED.md)')


class AWQIntelAMXMoEScheme(AWQMoEScheme):
    """MoE scheme for AWQ on Intel CPU with AMX."""

    def _init_kernel(self, quant_config: AWQConfig):
        raise NotImplementedError('slim removed the body of AWQIntelAMXMoEScheme._init_kernel: it never ran in any recording (see sglang/REMOVED.md)')

    def create_moe_runner(
        self, layer: torch.nn.Module, moe_runner_config: MoeRunnerConfig
    ):
        raise NotImplementedError('slim removed the body of AWQIntelAMXMoEScheme.create_moe_runner: it never ran in any recording (see sglang/REMOVED.md)')
