"""DeepSeek-V4 MXFP4 expert backend backed by FlashInfer CUTLASS MoE.

``Fp8Config`` selects this backend for SM90 and SM120; SM100 uses the
TRT-LLM implementation.
"""

from __future__ import annotations

import logging
import os



# Suppress TRT-LLM CUTLASS trace logs without overriding user configuration.
os.environ.setdefault("TLLM_LOG_LEVEL", "INFO")

logger = logging.getLogger(__name__)


# MXFP4 group/block size (E8M0 scale per 32 fp4 weights).
_GROUP_SIZE = 32


class Mxfp4FlashinferCutlassMoEMethod:
    """FlashInfer MXFP4 MoE: W4A16 on SM90 and W4A8 on SM120."""

