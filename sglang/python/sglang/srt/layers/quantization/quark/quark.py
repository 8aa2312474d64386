# SPDX-License-Identifier: Apache-2.0

import logging


from sglang.srt.layers.quantization.base_config import (  # noqa: E501
    LinearMethodBase,
    QuantizationConfig,
    )


__all__ = ["QuarkLinearMethod"]

logger = logging.getLogger(__name__)

_MOE_SHARED_EXPERT_QUANT_LAYER0_BASES: tuple[str, ...] = (
    "model.layers.0",
    "model.language_model.layers.0",
)

_SHARED_EXPERT_BODY_PROJ_SUFFIXES: tuple[str, ...] = (
    "gate_proj",
    "up_proj",
    "gate_up_proj",
    "down_proj",
)


class QuarkConfig(QuantizationConfig):

    pass


class QuarkLinearMethod(LinearMethodBase):

    pass


