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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict

import torch


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


def filter_prefill_cp_bcg_capture_num_tokens(
    capture_num_tokens: list[int], server_args: ServerArgs
) -> list[int]:
    raise NotImplementedError('slim removed the body of filter_prefill_cp_bcg_capture_num_tokens: it never ran in any recording (see sglang/REMOVED.md)')


def _slice_output_rows(output: Any, num_tokens: int) -> Any:
    raise NotImplementedError('slim removed the body of _slice_output_rows: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass
class PrefillCPBCGInput:
    """Fixed-address CP-local inputs and per-bucket replay state."""

    input_embeds: torch.Tensor
    positions: torch.Tensor
    bucket_local_tokens: Dict[int, int] = field(default_factory=dict)
    live_local_tokens: int = 0

    @classmethod
    def create(cls, runner: PrefillCudaGraphRunner) -> PrefillCPBCGInput:
        raise NotImplementedError('slim removed the body of PrefillCPBCGInput.create: it never ran in any recording (see sglang/REMOVED.md)')

    def prepare(
        self,
        runner: PrefillCudaGraphRunner,
        forward_batch: ForwardBatch,
        *,
        static_num_tokens: int,
        capture: bool,
    ) -> None:
        raise NotImplementedError('slim removed the body of PrefillCPBCGInput.prepare: it never ran in any recording (see sglang/REMOVED.md)')


def execute_prefill_cp_bcg(
    runner: PrefillCudaGraphRunner,
    forward_batch: ForwardBatch,
    static_forward_batch: ForwardBatch,
    static_num_tokens: int,
    raw_num_tokens: int,
    **kwargs,
):
    raise NotImplementedError('slim removed the body of execute_prefill_cp_bcg: it never ran in any recording (see sglang/REMOVED.md)')
