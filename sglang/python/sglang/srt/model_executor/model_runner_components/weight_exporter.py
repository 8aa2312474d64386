from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable


from sglang.srt.platforms import current_platform
from sglang.srt.utils import init_custom_process_group
from sglang.srt.utils.network import NetworkAddress

logger = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class WeightExporter:
    tp_rank: int
    tp_size: int
    gpu_id: int
    get_model_path: Callable[[], str]
    get_model: Callable[[], Any]
    _weights_send_group: dict = field(default_factory=dict)

