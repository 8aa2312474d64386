from __future__ import annotations


import torch

from sglang.srt.configs.inkling import InklingVisionConfig
from sglang.srt.models.inkling_common.norm import RMSNorm




def plan_out_scales(
    temporal_patch_size: int, patch_size: int, n_layers: int, n_channels: int = 3
) -> list[tuple[int, int, int, int]]:
    raise NotImplementedError("removed by slim: never run in any recording")


def fold_timespace_to_depth(
    vision_patches_bthwc: torch.Tensor, t_fold: int, hw_fold: int
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


