from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch

from sglang.kernels.ops.kv_canary.consts import (
    RealKvHashMode,
)
from sglang.kernels.ops.kv_canary.plan import launch_canary_plan_kernels
from sglang.kernels.ops.kv_canary.verify import (
    CanaryLaunchTag,
    VerifyPlan,
)
from sglang.kernels.ops.kv_canary.write import WritePlan
from sglang.srt.environ import envs
from sglang.srt.kv_canary.buffer_group import CanaryBufferGroup, PoolKind
from sglang.srt.kv_canary.endpoint import CanaryEndpoint
from sglang.srt.kv_canary.expected_inputs import ExpectedInputs
from sglang.srt.kv_canary.plan_input import PlanInput
from sglang.srt.kv_canary.state import ViolationLog

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


_BOUNDARY_INT_DTYPES = (torch.int32, torch.int64)
_INPUT_IDS = "forward_batch.input_ids"
_OUT_LOC = "forward_batch.out_cache_loc"
_POSITIONS = "forward_batch.positions"


def invoke_plan(
    *,
    plan_input: PlanInput,
    verify_plan: VerifyPlan,
    write_plan: WritePlan,
    group: CanaryBufferGroup,
    req_to_token: torch.Tensor,
    swa_window_size: int,
    req_to_verify_expected_tokens: Optional[torch.Tensor],
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def launch_endpoints_per_forward(
    *,
    endpoints: tuple[CanaryEndpoint, ...],
    group: CanaryBufferGroup,
    tag_filter: Callable[[CanaryLaunchTag], bool],
    verify_plan: VerifyPlan,
    write_plan: WritePlan,
    forward_batch: ForwardBatch,
    expected_inputs: ExpectedInputs,
    violation_log: ViolationLog,
    real_kv_hash_mode: RealKvHashMode,
    enable_write_input_assert: bool,
    enable_verify_token_assert: bool,
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def launch_endpoints_sweep(
    *,
    endpoints: tuple[CanaryEndpoint, ...],
    group: CanaryBufferGroup,
    verify_plan: VerifyPlan,
    violation_log: ViolationLog,
    real_kv_hash_mode: RealKvHashMode,
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _is_sweep_tag(tag: CanaryLaunchTag) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")




def passes_v_half_gate(tag: CanaryLaunchTag) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")




