"""DeepSeek-V4 MXFP4 expert backend backed by FlashInfer CUTLASS MoE.

``Fp8Config`` selects this backend for SM90 and SM120; SM100 uses the
TRT-LLM implementation.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import torch

from sglang.srt.utils import is_flashinfer_available, log_info_on_rank0
from sglang.srt.utils.common import is_sm120_supported

# Suppress TRT-LLM CUTLASS trace logs without overriding user configuration.
os.environ.setdefault("TLLM_LOG_LEVEL", "INFO")

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sglang.srt.layers.moe.token_dispatcher import CombineInput, DispatchOutput

# MXFP4 group/block size (E8M0 scale per 32 fp4 weights).
_GROUP_SIZE = 32


class Mxfp4FlashinferCutlassMoEMethod:
    """FlashInfer MXFP4 MoE: W4A16 on SM90 and W4A8 on SM120."""

    def __init__(self, fp8_method, prefix: str):
        if not is_flashinfer_available():
            raise RuntimeError("Mxfp4FlashinferCutlassMoEMethod requires FlashInfer.")
        self._use_mxfp8_act_scaling = is_sm120_supported()
        self._fp8 = fp8_method
        self.prefix = prefix
        self._swiglu_limit_tensor: torch.Tensor | None = None
        self._mxfp4_weight_global_scale_tensor: torch.Tensor | None = None

    @property
    def load_up_proj_weight_first(self) -> bool:
        """Load W13 directly as ``[up; gate]`` for FlashInfer CUTLASS."""
        return True




