from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

from sglang.srt.eplb.expert_distribution import (
    _ExpertDistributionRecorderNoop,
    get_global_expert_distribution_recorder,
)
from sglang.srt.layers.dp_attention import get_is_extend_in_batch
from sglang.srt.layers.moe.token_dispatcher.base import (
    BaseDispatcher,
    CombineInput,
    CombineInputFormat,
    DispatchOutput,
    DispatchOutputFormat,
)
from sglang.srt.layers.moe.token_dispatcher.deepep import DeepEPPDispatchHooks
from sglang.srt.layers.moe.topk import TopKOutput
from sglang.srt.layers.moe.utils import (
    DeepEPMode,
    is_tbo_enabled,
)
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import (
    get_bool_env_var,
    get_int_env_var,
    is_hip,
)

if TYPE_CHECKING:
    from sglang.srt.single_batch_overlap import CombineOverlapArgs

from enum import Enum, auto
from functools import lru_cache

import torch

from sglang.kernels.ops.quantization.fp8_kernel import fp8_dtype

# Blockwise quantization group sizes: number of elements sharing one scale factor
FP8_BLOCK_SIZE = 128
MXFP4_BLOCK_SIZE = 32

_is_hip = is_hip()
_use_aiter = get_bool_env_var("SGLANG_USE_AITER") and _is_hip


logger = logging.getLogger(__name__)


def _should_record_expert_distribution() -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


class MoriEPPDispatchHooks(DeepEPPDispatchHooks):

    def __call__(self, dispatcher: BaseDispatcher):
        for hook_fun in self.hook_dict.values():
            hook_fun(dispatcher)


class MoriEPNormalDispatchOutput(NamedTuple):
    """Mori EP normal dispatch output."""

    hidden_states: torch.Tensor
    hidden_states_scale: Optional[torch.Tensor]
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor
    num_recv_tokens_per_expert: List[int]
    origin_topk_ids: torch.Tensor
    origin_topk_weights: torch.Tensor
    out_dtype: torch.dtype

    @property
    def format(self) -> DispatchOutputFormat:
        return DispatchOutputFormat.DEEPEP_NORMAL


class MoriEPLLDispatchOutput(NamedTuple):
    """Mori EP low latency dispatch output."""

    hidden_states: torch.Tensor
    hidden_states_scale: Optional[torch.Tensor]
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor
    num_recv_tokens_per_expert: List[int]
    origin_topk_ids: torch.Tensor
    origin_topk_weights: torch.Tensor
    out_dtype: torch.dtype

    @property
    def format(self) -> DispatchOutputFormat:
        return DispatchOutputFormat.DEEPEP_LL


assert isinstance(MoriEPNormalDispatchOutput, DispatchOutput)
assert isinstance(MoriEPLLDispatchOutput, DispatchOutput)


class MoriEPNormalCombineInput(NamedTuple):
    """Mori EP combine input."""

    hidden_states: torch.Tensor
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor

    @property
    def format(self) -> CombineInputFormat:
        return CombineInputFormat.DEEPEP_NORMAL


class MoriEPLLCombineInput(NamedTuple):
    """Mori EP combine input."""

    hidden_states: torch.Tensor
    topk_ids: torch.Tensor
    topk_weights: torch.Tensor

    @property
    def format(self) -> CombineInputFormat:
        return CombineInputFormat.DEEPEP_LL


assert isinstance(MoriEPNormalCombineInput, CombineInput)
assert isinstance(MoriEPLLCombineInput, CombineInput)




class DispatchDtype(Enum):
    bf16 = "bfloat16"
    fp8 = "float8_blockwise"
    fp4 = "mxfp4_blockwise"


class CombineDtype(Enum):
    bf16 = "bfloat16"
    fp8 = "float8_blockwise"
    fp8_direct_cast = "float8_direct_cast"
    fp4 = "fp4_blockwise"  # packed E2M1, blockwise-scaled; ~half the combine transport of fp8






# init_mori_op only needs do once in model initial stage
# use lru_cache to reuse the same mori_op instance to avoid the init overhead for mori
@lru_cache(maxsize=4)
def init_mori_op(
    group,
    router_topk,
    num_experts,
    num_local_experts,
    hidden_size,
    params_dtype,
    num_max_dispatch_tokens_per_rank,
    deepep_mode,
    instance_id=0,
    dispatch_dtype=DispatchDtype.bf16,
    combine_dtype=CombineDtype.bf16,
    enable_sdma=False,
    use_external_inp_buf=True,
):
    raise NotImplementedError("removed by slim: never run in any recording")


class CommStreamPool:
    _streams = {}  # key -> torch.cuda.Stream


    @classmethod
    def get_stream_from_pool(cls, group) -> torch.cuda.Stream:
        raise NotImplementedError("removed by slim: never run in any recording")



class _MoriEPDispatcherImplBase:
    def __init__(
        self,
        group: torch.distributed.ProcessGroup,
        router_topk: int,
        permute_fusion: bool,
        num_experts: int,
        num_local_experts: int,
        hidden_size: int,
        params_dtype: torch.dtype,
        deepep_mode: DeepEPMode,
        instance_id: int = 0,
    ):
        try:
            pass
        except ImportError:
            raise ImportError("Mori EP is not installed. Please install.")
        self.group = group
        self.router_topk = router_topk
        self.permute_fusion = permute_fusion
        self.num_experts = num_experts
        self.num_local_experts = num_local_experts
        self.hidden_size = hidden_size
        self.params_dtype = params_dtype
        self.deepep_mode = deepep_mode
        self.instance_id = instance_id

        self.num_max_dispatch_tokens_per_rank = get_int_env_var(
            "SGLANG_MORI_NUM_MAX_DISPATCH_TOKENS_PER_RANK", 4096
        )

        self.enable_sdma = get_bool_env_var("MORI_ENABLE_SDMA", "false")
        self.use_external_inp_buf = True

        self._mori_op = None
        self.dispatch_dtype = DispatchDtype.bf16
        self.combine_dtype = CombineDtype.bf16

        self.quant_config: Optional[dict] = None

        self.overlap_args: Optional[CombineOverlapArgs] = None
        self.meta_overlap_args: Optional[dict] = None

    @property
    def mori_op(self):
        if self._mori_op is None:
            # If set_quant_config was never called, apply env var override now
            if self.quant_config is None:
                self._apply_dispatch_dtype_override()
            self._mori_op = init_mori_op(
                self.group,
                self.router_topk,
                self.num_experts,
                self.num_local_experts,
                self.hidden_size,
                self.params_dtype,
                self.num_max_dispatch_tokens_per_rank,
                self.deepep_mode,
                self.instance_id,
                self.dispatch_dtype,
                self.combine_dtype,
                self.enable_sdma,
                self.use_external_inp_buf,
            )
        return self._mori_op

    def _apply_dispatch_dtype_override(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def dispatch_a(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ):
        raise NotImplementedError

    def dispatch_b(self, *args, **kwargs):
        raise NotImplementedError

    def combine_a(
        self,
        hidden_states: torch.Tensor,
        topk_ids: torch.Tensor,
        topk_weights: torch.Tensor,
    ):
        raise NotImplementedError

    def combine_b(self, *args, **kwargs):
        raise NotImplementedError

    def set_quant_config(self, quant_config: dict) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def set_overlap_args(
        self, combine_overlap_args: CombineOverlapArgs, meta_overlap_args: dict
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def clear_overlap_args(self) -> None:
        self.overlap_args = None
        self.meta_overlap_args = None



class _MoriEPDispatcherImplNormal(_MoriEPDispatcherImplBase):
    def __init__(self, async_finish: bool, **kwargs):
        super().__init__(**kwargs)

        self.async_finish = async_finish
        self.quant_config = {}
        self.fp8_quant_func = get_hip_quant(QuantType.per_1x128)
        self.fp4_quant_func = get_hip_quant(QuantType.per_1x32)
        self.enable_dual_stream = is_tbo_enabled()
        self._comm_stream = None
        if self.enable_dual_stream:
            self._comm_stream = CommStreamPool.get_stream_from_pool(self.group)


    def dispatch_a(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def dispatch_b(
        self,
        hidden_states,
        topk_weights,
        topk_ids,
        scale,
        output_dtype,
        previous_event,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _dispatch_core(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.Tensor,
        scale: Optional[torch.Tensor] = None,
        previous_event: Optional[torch.cuda.Event] = None,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine_a(
        self,
        hidden_states: torch.Tensor,
        topk_ids: torch.Tensor,
        topk_weights: torch.Tensor,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine_b(self, hidden_states, topk_ids, topk_weights, previous_event):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _combine_core(
        self,
        hidden_states: torch.Tensor,
        topk_ids: torch.Tensor,
        topk_weights: torch.Tensor,
        previous_event: Optional[torch.cuda.Event],
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def set_quant_config(self, quant_config: dict):
        super().set_quant_config(quant_config)


class _MoriEPDispatcherImplLowLatency(_MoriEPDispatcherImplBase):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.quant_config = {}
        self.fp8_quant_func = get_hip_quant(QuantType.per_1x128)
        self.fp4_quant_func = get_hip_quant(QuantType.per_1x32)

    def dispatch_a(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def dispatch_b(
        self,
        hidden_states,
        recv_topk_weights,
        recv_topk_ids,
        recv_scales,
        packed_recv_count,
        topk_weights,
        topk_ids,
        output_dtype,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _dispatch_core(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.Tensor,
        scale: Optional[torch.Tensor] = None,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine_a(
        self,
        hidden_states: torch.Tensor,
        topk_ids: torch.Tensor,
        topk_weights: torch.Tensor,
        overlap_args: Optional[CombineOverlapArgs] = None,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine_b(self, hidden_states, topk_ids, topk_weights, previous_event):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _combine_core(
        self,
        hidden_states: torch.Tensor,
        topk_ids: torch.Tensor,
        topk_weights: torch.Tensor,
        overlap_args: Optional[CombineOverlapArgs] = None,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def set_quant_config(self, quant_config: dict):
        super().set_quant_config(quant_config)


@dataclass
class _Stage(Enum):
    INITIAL = auto()
    AFTER_DISPATCH_A = auto()
    AFTER_DISPATCH_B = auto()
    AFTER_COMBINE_A = auto()


class MoriEPDispatcher(BaseDispatcher):
    def __init__(
        self,
        group: torch.distributed.ProcessGroup,
        router_topk: int,
        permute_fusion: bool = False,
        num_experts: int = None,
        num_local_experts: int = None,
        hidden_size: int = None,
        params_dtype: torch.dtype = None,
        deepep_mode: DeepEPMode = DeepEPMode.AUTO,
        async_finish: bool = False,
        return_recv_hook: bool = False,
        instance_id: int = 0,
    ):
        super().__init__()

        self.deepep_mode = deepep_mode

        async_mode = self.deepep_mode.enable_low_latency()
        if get_bool_env_var("SGLANG_ROCM_USE_MULTI_STREAM") and not async_mode:
            logger.warning_once(
                "SGLANG_ROCM_USE_MULTI_STREAM=1 is set but Mori AsyncLL is "
                "not enabled (--deepep-mode=%s). The alt-stream overlap only "
                "frees up CUs when dispatch/combine runs on the AsyncLL "
                "copy-engine kernel; otherwise it stays on CUs and competes "
                "with the alt-stream work. Pass --deepep-mode low_latency "
                "(or auto) to enable the AsyncLL kernel.",
                self.deepep_mode.value,
            )

        common_kwargs = dict(
            group=group,
            router_topk=router_topk,
            permute_fusion=permute_fusion,
            num_experts=num_experts,
            num_local_experts=num_local_experts,
            hidden_size=hidden_size,
            params_dtype=params_dtype,
            deepep_mode=deepep_mode,
            instance_id=instance_id,
        )

        if self.deepep_mode.enable_low_latency():
            self._low_latency_dispatcher = _MoriEPDispatcherImplLowLatency(
                **common_kwargs,
            )

        if self.deepep_mode.enable_normal():
            self._normal_dispatcher = _MoriEPDispatcherImplNormal(
                async_finish=async_finish,
                **common_kwargs,
            )

        self._stage = _Stage.INITIAL
        self._deepep_dispatch_hooks = MoriEPPDispatchHooks()

        # Mori dispatch produces global topk_ids in [0, num_experts); mask out
        # experts that are not local to this rank.
        self.expert_mask_gpu = None

    def dispatch(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ) -> DispatchOutput:
        self._num_tokens = hidden_states.shape[0]
        self.dispatch_a(hidden_states, topk_output)
        if self._deepep_dispatch_hooks is not None:
            self._deepep_dispatch_hooks(self)
        ret = self.dispatch_b()
        return ret

    def dispatch_a(
        self,
        hidden_states: torch.Tensor,
        topk_output: TopKOutput,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def dispatch_b(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine(
        self,
        combine_input: CombineInput,
    ) -> Tuple:
        self.combine_a(combine_input)
        hidden_states = self.combine_b()
        return hidden_states[: self._num_tokens]

    def combine_a(
        self,
        combine_input: CombineInput,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def combine_b(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _get_impl(self) -> _MoriEPDispatcherImplBase:
        raise NotImplementedError("removed by slim: never run in any recording")

    def _update_stage(self, old_stage, new_stage):
        assert self._stage == old_stage
        self._stage = new_stage

    def set_quant_config(self, quant_config: dict):
        super().set_quant_config(quant_config)
        if self.deepep_mode.enable_low_latency():
            self._low_latency_dispatcher.set_quant_config(quant_config)
        if self.deepep_mode.enable_normal():
            self._normal_dispatcher.set_quant_config(quant_config)

    def set_overlap_args(
        self, combine_overlap_args: CombineOverlapArgs, meta_overlap_args: dict
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def clear_overlap_args(self):
        raise NotImplementedError("removed by slim: never run in any recording")

