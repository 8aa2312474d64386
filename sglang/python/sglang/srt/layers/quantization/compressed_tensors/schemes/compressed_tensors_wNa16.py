# Adapted from https://github.com/vllm-project/vllm/tree/main/vllm/model_executor/layers/quantization/compressed_tensors
# SPDX-License-Identifier: Apache-2.0

# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import logging


# yapf conflicts with isort for this block
# yapf: disable
from sglang.srt.layers.quantization.utils import (
    get_scalar_types,
    )
from sglang.srt.utils import is_cuda

_is_cuda = is_cuda()



ScalarType, scalar_types = get_scalar_types()

logger = logging.getLogger(__name__)

__all__ = []
WNA16_SUPPORTED_TYPES_MAP = {
    4: scalar_types.uint4b8,
    8: scalar_types.uint8b128
}
WNA16_ZP_SUPPORTED_TYPES_MAP = {4: scalar_types.uint4, 8: scalar_types.uint8}
WNA16_SUPPORTED_BITS = list(WNA16_SUPPORTED_TYPES_MAP.keys())


