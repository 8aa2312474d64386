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
"""Run the model with xpu graph and torch.compile."""

from __future__ import annotations

import logging

import torch

from sglang.srt.model_executor.runner import DecodeCudaGraphRunner

logger = logging.getLogger(__name__)



_fake_ops_registered = False


def register_fake_ops():
    raise NotImplementedError('slim removed the body of register_fake_ops: it never ran in any recording (see sglang/REMOVED.md)')


class XPUGraphRunner(DecodeCudaGraphRunner):
    """A XPUGraphRunner runs the forward pass of a model with xpu graph and torch.compile."""

