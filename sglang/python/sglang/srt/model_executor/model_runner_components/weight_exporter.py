from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch


logger = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class WeightExporter:
    tp_rank: int
    tp_size: int
    gpu_id: int
    get_model_path: Callable[[], str]
    get_model: Callable[[], Any]
    _weights_send_group: dict = field(default_factory=dict)

    def init_weights_send_group_for_remote_instance(
        self,
        master_address,
        ports,
        group_rank,
        world_size,
        group_name,
        backend="nccl",
    ):
        raise NotImplementedError('slim removed the body of WeightExporter.init_weights_send_group_for_remote_instance: it never ran in any recording (see sglang/REMOVED.md)')

    def send_weights_to_remote_instance(
        self,
        master_address,
        ports,
        group_name,
    ):
        raise NotImplementedError('slim removed the body of WeightExporter.send_weights_to_remote_instance: it never ran in any recording (see sglang/REMOVED.md)')

    def get_weights_by_name(
        self: WeightExporter, name: str, truncate_size: int = 100
    ) -> Optional[torch.Tensor]:
        raise NotImplementedError('slim removed the body of WeightExporter.get_weights_by_name: it never ran in any recording (see sglang/REMOVED.md)')
