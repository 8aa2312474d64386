from __future__ import annotations

import logging
from typing import TYPE_CHECKING


logger = logging.getLogger(__name__)
DEFAULT_MOE_PADDING_SIZE = 32


if TYPE_CHECKING:
    from sglang.srt.configs.load_config import LoadConfig
    from sglang.srt.configs.model_config import ModelConfig


def get_moe_padding_size(weight_block_size):
    raise NotImplementedError('slim removed the body of get_moe_padding_size: it never ran in any recording (see sglang/REMOVED.md)')


def adjust_config_with_unaligned_cpu_tp(
    model_config: ModelConfig, load_config: LoadConfig, tp_size: int
) -> ModelConfig:
    # Support the case where the num_attention_heads is not divisible by the TP size.
    raise NotImplementedError('slim removed the body of adjust_config_with_unaligned_cpu_tp: it never ran in any recording (see sglang/REMOVED.md)')
