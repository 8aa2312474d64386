# Copyright 2023-2026 SGLang Team
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

"""Breakable CUDA graph helpers for context-parallel prefill."""

from __future__ import annotations

from typing import TYPE_CHECKING


from sglang.srt.layers.cp.utils import (
    cp_gather_after_forward,
    enable_cp_v2,
    prepare_cp_forward,
)
from sglang.srt.model_executor.forward_batch_info import PPProxyTensors

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch
    from sglang.srt.model_executor.runner.prefill_cuda_graph_runner import (
        PrefillCudaGraphRunner,
    )
    from sglang.srt.server_args import ServerArgs


def supports_prefill_cp_bcg(server_args: ServerArgs) -> bool:
    raise NotImplementedError('slim removed the body of supports_prefill_cp_bcg: it never ran in any recording (see sglang/REMOVED.md)')


def enable_cp_v2_bcg_capture(server_args: ServerArgs) -> bool:
    raise NotImplementedError('slim removed the body of enable_cp_v2_bcg_capture: it never ran in any recording (see sglang/REMOVED.md)')


