import logging


from sglang.srt.layers.quantization.base_config import (
    QuantizationConfig,
    )
from sglang.srt.utils import is_hip


_is_hip = is_hip()



logger = logging.getLogger(__name__)


class QuarkInt4Fp8Config(QuantizationConfig):
    """Config class for Quark Quantization.

    - Weight: static, per-channel, symmetric
    - Activation: dynamic, per-token, symmetric
    """

