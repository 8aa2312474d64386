# Copyright 2023-2024 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================

# Source: https://github.com/LLaVA-VL/LLaVA-NeXT/blob/main/llava/mm_utils.py
"""
Utilities for multi-modal models.

This python file mainly contains utilities that were used in the
image processing logic of llava-next including operations such as
anyres and anyres_max

Currently supports the anyres and anyres_max operation for CLIP and
SigLip. For more information, you may refer to the paper or the blog

LLaVA-NeXT : https://llava-vl.github.io/blog/2024-01-30-llava-next/
LLaVA-Onevision : https://arxiv.org/pdf/2408.03326

"""

from typing import Callable, Literal, Optional, Sequence

import torch

from sglang.srt.distributed.communication_op import tensor_model_parallel_all_gather
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import flatten_nested_list




def has_valid_data(data) -> bool:
    if data is None:
        return False
    if isinstance(data, list):
        return any(has_valid_data(item) for item in flatten_nested_list(data))
    return True


def materialize_multimodal_features(
    features: Sequence[torch.Tensor],
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def select_best_resolution(original_size, possible_resolutions):
    raise NotImplementedError("removed by slim: never run in any recording")






def get_anyres_image_grid_shape(image_size, grid_pinpoints, patch_size):
    raise NotImplementedError("removed by slim: never run in any recording")






def expand2square(pil_img, background_color):
    raise NotImplementedError("removed by slim: never run in any recording")


def unpad_image(tensor, original_size):
    raise NotImplementedError("removed by slim: never run in any recording")


def unpad_image_shape(current_height, current_width, original_size):
    raise NotImplementedError("removed by slim: never run in any recording")




# Adapted from https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/models/vision.py




# Adapted from https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/models/vision.py
def run_dp_sharded_vision_model(
    image_input: torch.Tensor, vision_model: torch.nn.Module
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def concat_or_single(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


# Adapted from https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/models/vision.py
def run_dp_sharded_mrope_vision_model(
    vision_model: torch.nn.Module,
    pixel_values: Optional[torch.Tensor],
    grid_thw_list: list,
    *,
    rope_type: Literal["rope_3d", "rope_2d", "rope_2d_packed"],
    pool_temporal_dimension: bool = False,
    load_local_pixel_values: Optional[Callable[[list[int]], torch.Tensor]] = None,
    pixel_values_device: Optional[torch.device] = None,
    pixel_values_dtype: Optional[torch.dtype] = None,
    pass_grid_thw_list: bool = False,
):
    raise NotImplementedError("removed by slim: never run in any recording")
