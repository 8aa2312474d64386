"""
Common utilities for torch model parallelism.
"""

import logging

import torch
import torch.nn as nn

logger = logging.getLogger(__name__)

try:
    pass
except ImportError:
    pass



def apply_torch_tp(
    *,
    model: nn.Module,
    device: str,
    tp_size: int,
):
    raise NotImplementedError('slim removed the body of apply_torch_tp: it never ran in any recording (see sglang/REMOVED.md)')
