# SPDX-License-Identifier: Apache-2.0

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Optional

import torch

try:
    from aiter.ops.triton.quant import dynamic_mxfp4_quant
except ImportError:

    def raise_aiter_import_error(*args, **kwargs):
        raise NotImplementedError('slim removed the body of raise_aiter_import_error: it never ran in any recording (see sglang/REMOVED.md)')

    dynamic_mxfp4_quant = raise_aiter_import_error
from torch import nn


def should_ignore_layer(
    layer_name: Optional[str],
    ignore: Iterable[str],
    fused_mapping: Mapping[str, list[str]] = MappingProxyType({}),
) -> bool:
    raise NotImplementedError('slim removed the body of should_ignore_layer: it never ran in any recording (see sglang/REMOVED.md)')


def check_equal_or_regex_match(layer_name: str, targets: Iterable[str]) -> bool:
    raise NotImplementedError('slim removed the body of check_equal_or_regex_match: it never ran in any recording (see sglang/REMOVED.md)')


def _is_equal_or_regex_match(
    value: str, target: str, check_contains: bool = False
) -> bool:
    raise NotImplementedError('slim removed the body of _is_equal_or_regex_match: it never ran in any recording (see sglang/REMOVED.md)')


# utility for tensor dims > 2 cases
def quark_post_load_weights(self_attn: nn.Module, w: torch.Tensor, quant_format: str):
    raise NotImplementedError('slim removed the body of quark_post_load_weights: it never ran in any recording (see sglang/REMOVED.md)')
