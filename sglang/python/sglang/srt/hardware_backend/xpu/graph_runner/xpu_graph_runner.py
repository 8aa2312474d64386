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
from typing import TYPE_CHECKING

import torch

from sglang.srt.model_executor.runner import DecodeCudaGraphRunner
from sglang.srt.utils import register_xpu_device_properties_for_dynamo

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner


_fake_ops_registered = False


def register_fake_ops():
    raise NotImplementedError("removed by slim: never run in any recording")


class XPUGraphRunner(DecodeCudaGraphRunner):
    """A XPUGraphRunner runs the forward pass of a model with xpu graph and torch.compile."""

    @staticmethod
    def _apply_xpu_compile_config() -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def __init__(self, model_runner: ModelRunner):
        assert (
            not model_runner.server_args.enable_memory_saver
        ), "XPUGraphRunner does not support Torch Memory Saver yet."
        register_fake_ops()
        self._apply_xpu_compile_config()
        register_xpu_device_properties_for_dynamo()
        super().__init__(model_runner)

        assert (
            not self.enable_two_batch_overlap
        ), "XPUGraphRunner does not support two batch overlap yet."
        assert (
            not self.require_mlp_tp_gather
        ), "XPUGraphRunner does not support MLP TP gather yet."
        assert (
            not self.require_mlp_sync
        ), "XPUGraphRunner does not support MLP sync yet."
        assert (
            not self.require_gathered_buffer
        ), "XPUGraphRunner does not support gathered buffer yet."

    def _init_profile_context_and_memory_record(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _post_process_after_profile(self, prof_context):
        raise NotImplementedError("removed by slim: never run in any recording")
