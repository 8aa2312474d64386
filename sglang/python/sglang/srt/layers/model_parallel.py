"""
Common utilities for torch model parallelism.
"""

import logging
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch.distributed.device_mesh import DeviceMesh

logger = logging.getLogger(__name__)

try:
    import torch.distributed.tensor as dt
except ImportError:
    # torch 2.4 or older
    import torch.distributed._tensor as dt

from torch.distributed.tensor.parallel import (
    RowwiseParallel,
    )


def _shard_tensor(
    full_tensor: torch.Tensor,
    device_mesh: DeviceMesh,
    placements: Sequence[dt.Shard],
) -> "dt.DTensor":
    raise NotImplementedError("removed by slim: never run in any recording")




class RowwiseParallelMaybeWait(RowwiseParallel):
    """
    A version of RowwiseParallel that waits for the output (establish dependency
    between comm stream and compute stream in CUDA sense) before going into the
    next op. This is needed to workaround the current interaction between
    AsyncCollectiveTensor and multi-platform ops, such as `RMSNorm`.
    """




def tensor_parallel(
    module: torch.nn.Module,
    device_mesh: Optional[DeviceMesh] = None,
):
    raise NotImplementedError("removed by slim: never run in any recording")


def apply_torch_tp(
    *,
    model: nn.Module,
    device: str,
    tp_size: int,
):
    raise NotImplementedError("removed by slim: never run in any recording")
