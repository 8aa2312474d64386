from __future__ import annotations

import logging


from sglang.srt.layers.moe.moe_runner.marlin import MarlinMoeQuantInfo


logger = logging.getLogger(__name__)


class Mxfp4MarlinMoEMethod:
    """MXFP4 (E8M0 scales) MoE quantization method using the Marlin backend."""

