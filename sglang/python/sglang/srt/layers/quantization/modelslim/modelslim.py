from __future__ import annotations

import logging


from sglang.srt.layers.quantization.base_config import (
    QuantizationConfig,
)


logger = logging.getLogger(__name__)


# func refers to RMSNorm.__init__
# func refers to RMSNorm.forward_oot
class ModelSlimConfig(QuantizationConfig):
    """
    Config class for ModelSlim Quantization, a NPU-specific quantization type.
    """

