from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sglang.srt.utils import (
    log_debug_on_rank0,
)

logger = logging.getLogger(__name__)
DEFAULT_MOE_PADDING_SIZE = 32


if TYPE_CHECKING:
    from sglang.srt.configs.load_config import LoadConfig
    from sglang.srt.configs.model_config import ModelConfig




def get_moe_padding_size(weight_block_size):
    raise NotImplementedError("removed by slim: never run in any recording")






def adjust_tp_num_heads_if_necessary(model_config, tp_size, is_post_update):
    raise NotImplementedError("removed by slim: never run in any recording")






def adjust_config_with_unaligned_cpu_tp(
    model_config: ModelConfig, load_config: LoadConfig, tp_size: int
) -> ModelConfig:
    raise NotImplementedError("removed by slim: never run in any recording")
