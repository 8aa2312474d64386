"""Utility functions for vision attention layers."""

import torch

from sglang.srt.runtime_context import get_parallel


def update_vit_attn_dummy_heads_config(config):
    raise NotImplementedError("removed by slim: never run in any recording")


def pad_vit_attn_dummy_heads(config, name: str, loaded_weight: torch.Tensor):
    raise NotImplementedError("removed by slim: never run in any recording")
