from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union

import torch

from sglang.srt.utils import (
    MultiprocessingSerializer,
    )

if TYPE_CHECKING:
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightUpdater:
    tp_rank: int
    device: str
    gpu_id: int
    model_config: ModelConfig
    custom_weight_loaders: dict
    get_model: Callable[[], Any]
    update_model_fields: Callable[..., None]
    recapture_cuda_graph: Callable[[], None]
    get_model_runner: Callable[[], ModelRunner]
    _model_update_group: dict = field(default_factory=dict)

    def init_weights_update_group(
        self,
        master_address,
        master_port,
        rank_offset,
        world_size,
        group_name,
        backend="nccl",
    ):
        raise NotImplementedError('slim removed the body of WeightUpdater.init_weights_update_group: it never ran in any recording (see sglang/REMOVED.md)')

    def destroy_weights_update_group(self, group_name):
        raise NotImplementedError('slim removed the body of WeightUpdater.destroy_weights_update_group: it never ran in any recording (see sglang/REMOVED.md)')

    def _assert_weight_cache_inactive(self: WeightUpdater, op: str) -> None:
        raise NotImplementedError('slim removed the body of WeightUpdater._assert_weight_cache_inactive: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_disk(
        self: WeightUpdater,
        model_path: str,
        load_format: str,
        weight_name_filter: Optional[Callable[[str], bool]] = None,
        recapture_cuda_graph: bool = False,
    ) -> tuple[bool, str]:
        raise NotImplementedError('slim removed the body of WeightUpdater.update_weights_from_disk: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_distributed(
        self: WeightUpdater,
        names,
        dtypes,
        shapes,
        group_name,
        load_format: Optional[str] = None,
    ):
        raise NotImplementedError('slim removed the body of WeightUpdater.update_weights_from_distributed: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_tensor(
        self: WeightUpdater,
        named_tensors: List[Tuple[str, Union[torch.Tensor, LocalSerializedTensor]]],
        load_format: Optional[str] = None,
    ):
        raise NotImplementedError('slim removed the body of WeightUpdater.update_weights_from_tensor: it never ran in any recording (see sglang/REMOVED.md)')

    def update_weights_from_ipc(self: WeightUpdater, recv_req):
        raise NotImplementedError('slim removed the body of WeightUpdater.update_weights_from_ipc: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass
class LocalSerializedTensor:
    """torch.Tensor that gets serialized by MultiprocessingSerializer (which only serializes a pointer and not the data).
    The i-th element in the list corresponds to i-th rank's GPU."""

    values: List[bytes]

    def get(self, rank: int):
        raise NotImplementedError('slim removed the body of LocalSerializedTensor.get: it never ran in any recording (see sglang/REMOVED.md)')
