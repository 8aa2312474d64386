from __future__ import annotations

import logging


from sglang.srt.layers.quantization.compressed_tensors.schemes import (
    CompressedTensorsMoEScheme,
)
from sglang.srt.utils import is_flashinfer_available

logger = logging.getLogger(__name__)

__all__ = ["CompressedTensorsMxInt4MoE"]


if is_flashinfer_available():
    pass


class CompressedTensorsMxInt4MoE(CompressedTensorsMoEScheme):
    # Adapted from https://github.com/flashinfer-ai/flashinfer/blob/main/tests/moe/test_trtllm_gen_fused_moe.py
    pass
