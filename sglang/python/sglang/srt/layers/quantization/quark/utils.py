# SPDX-License-Identifier: Apache-2.0

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Optional

import torch

try:
    from aiter.ops.triton.quant import dynamic_mxfp4_quant
except ImportError:

    def raise_aiter_import_error(*args, **kwargs):
        raise NotImplementedError("removed by slim: never run in any recording")

    dynamic_mxfp4_quant = raise_aiter_import_error
from torch import nn


def deep_compare(dict1: Any, dict2: Any) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def should_ignore_layer(
    layer_name: Optional[str],
    ignore: Iterable[str],
    fused_mapping: Mapping[str, list[str]] = MappingProxyType({}),
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")






# utility for tensor dims > 2 cases






def quark_post_load_weights(self_attn: nn.Module, w: torch.Tensor, quant_format: str):
    raise NotImplementedError("removed by slim: never run in any recording")
