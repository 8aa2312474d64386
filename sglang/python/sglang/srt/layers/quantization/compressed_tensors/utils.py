# Adapted from https://github.com/vllm-project/vllm/tree/main/vllm/model_executor/layers/quantization/compressed_tensors
# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

from types import MappingProxyType
from typing import Iterable, List, Mapping, Optional

from torch.nn import Module


def is_activation_quantization_format(format: str) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def should_ignore_layer(
    layer_name: Optional[str],
    ignore: Iterable[str] = tuple(),
    fused_mapping: Mapping[str, List[str]] = MappingProxyType({}),
) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")




def find_matched_target(
    layer_name: Optional[str],
    module: Module,
    targets: Iterable[str],
    fused_mapping: Mapping[str, List[str]] = MappingProxyType({}),
) -> str:
    raise NotImplementedError("removed by slim: never run in any recording")






