import logging
from enum import Enum

import torch
from torch import nn
from torch.nn import functional as F

from sglang.srt.layers.moe.moe_runner.base import MoeRunnerConfig
from sglang.srt.layers.quantization.base_config import QuantizationConfig
from sglang.srt.layers.quantization.unquant import UnquantizedFusedMoEMethod
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.models.inkling_common.kernels.comm import (
    reduce_scatter_hidden,
    symm_mem_all_reduce,
)
from sglang.srt.models.inkling_common.util import (
    FusedMoELoadingMixin,
    lora_compatible_layout_enabled,
)
from sglang.srt.models.llama import LlamaMLP
from sglang.srt.runtime_context import get_exec, get_model

logger = logging.getLogger(__name__)


class _InklingUnquantizedFusedMoEMethod(UnquantizedFusedMoEMethod):
    """Run the sink's linearization after generic post-load processing."""

    def process_weights_after_loading(self, layer: nn.Module) -> None:
        super().process_weights_after_loading(layer)
        layer.process_weights_after_loading()


class SharedExpertFp4Strategy(Enum):
    """How a shared-expert dense MLP materializes its weights for serving."""

    #: Checkpoint BF16 -> serve bf16.
    BF16 = "bf16"
    #: Checkpoint FP4 -> serve FP4, repacked for flashinfer-trtllm (no dequant).
    FP4 = "fp4"

    @property
    def loads_fp4_checkpoint(self) -> bool:
        """Shared experts are NVFP4 in the checkpoint (-> allocate FP4 params to load)."""
        return self is SharedExpertFp4Strategy.FP4

    @property
    def serves_fp4(self) -> bool:
        """Shared experts are served as FP4 (-> the _forward_fp4 path)."""
        return self is SharedExpertFp4Strategy.FP4


@torch.compile(fullgraph=True)
def swiglu(z_btn: torch.Tensor) -> torch.Tensor:
    # Compute SwiGLU in FP32; torch.compile fuses the casts.
    dtype = z_btn.dtype
    z_btn = z_btn.float()
    # Interleave gate and up projections for tensor parallelism.
    y_btn = F.silu(z_btn[..., ::2]) * z_btn[..., 1::2]
    return y_btn.to(dtype)


@torch.compile(fullgraph=True)
def swiglu_contiguous(z_btn: torch.Tensor) -> torch.Tensor:
    # Compute SwiGLU in FP32; torch.compile fuses the casts.
    dtype = z_btn.dtype
    z_btn = z_btn.float()
    # Use strided gate and up projections for inference tensor parallelism.
    y_btn = (
        F.silu(z_btn[..., : z_btn.shape[-1] // 2]) * z_btn[..., z_btn.shape[-1] // 2 :]
    )
    return y_btn.to(dtype)


class InklingSwiglu(nn.Module):
    def __init__(self, interleaved: bool = True):
        super().__init__()
        self.interleaved = interleaved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swiglu(x) if self.interleaved else swiglu_contiguous(x)




# Compile to improve memory bandwidth for shared-expert shapes.
@torch.compile(fullgraph=True)
def _sum_dim0(x: torch.Tensor) -> torch.Tensor:
    return x.float().sum(dim=0).to(x.dtype)


class InklingBatchDenseMLP(nn.Module, FusedMoELoadingMixin):
    def __init__(
        self,
        n_shared_experts: int,
        d_model: int,
        shared_d_mlp: int,
        layer_id: int,
        prefix: str,
        quant_config: QuantizationConfig | None = None,
        inference_moe_w13_interleaved: bool = True,
        tp_rank: int = 0,
        tp_size: int = 1,
        tp_group: torch.distributed.ProcessGroup | None = None,
        linearized_bf16: bool = False,
    ):
        nn.Module.__init__(self)
        self._skip_aiter_moe_shuffle = True
        self.n_shared_experts = n_shared_experts
        self.inference_moe_w13_interleaved = inference_moe_w13_interleaved
        self.quant_config = quant_config
        self._fp4_strategy = self._resolve_fp4_strategy(quant_config, prefix)
        if self._fp4_strategy.loads_fp4_checkpoint:
            from sglang.srt.models.inkling_common.quantization.quant import (
                InklingNvfp4MoEMethod,
            )

            self.quant_method = InklingNvfp4MoEMethod(quant_config=quant_config)
        else:
            self.quant_method = _InklingUnquantizedFusedMoEMethod(False)
        self.moe_ep_size = 1
        self.moe_ep_rank = 0
        self.num_experts = n_shared_experts
        self.num_local_experts = n_shared_experts
        self.hidden_size = d_model
        self.layer_id = layer_id

        self.moe_tp_rank = tp_rank
        self.moe_tp_size = tp_size
        self.tp_group = tp_group

        local_intermediate_size = shared_d_mlp // self.moe_tp_size
        self.intermediate_size_per_partition = local_intermediate_size
        self.moe_runner_config = MoeRunnerConfig(
            num_experts=n_shared_experts,
            num_local_experts=n_shared_experts,
            hidden_size=d_model,
            intermediate_size_per_partition=local_intermediate_size,
            layer_id=layer_id,
            top_k=None,
            num_fused_shared_experts=n_shared_experts,
            params_dtype=torch.get_default_dtype(),
            activation="silu",
            apply_router_weight_on_input=False,
            inplace=True,
            no_combine=False,
            routed_scaling_factor=None,
            gemm1_alpha=None,
            gemm1_clamp_limit=None,
            is_gated=True,
        )

        FusedMoELoadingMixin.__init__(
            self,
            quant_config,
            self.quant_method,
            self.moe_runner_config,
            self.moe_tp_rank,
            self.moe_tp_size,
        )
        self.quant_method.create_weights(
            layer=self,
            num_experts=n_shared_experts,
            hidden_size=d_model,
            intermediate_size_per_partition=local_intermediate_size,
            params_dtype=torch.get_default_dtype(),
            weight_loader=self.weight_loader_fused,
            with_bias=False,
        )
        self._fp4_shared_processed = False
        self._linearized_bf16_enabled = (
            linearized_bf16
            and self.inference_moe_w13_interleaved
            and self._fp4_strategy is SharedExpertFp4Strategy.BF16
        )
        if self._linearized_bf16_enabled:
            local_f = self.w2_weight.shape[2]
            self.register_buffer(
                "_w2_lin",
                self.w2_weight.new_empty(
                    self.n_shared_experts * local_f,
                    self.w2_weight.shape[1],
                ),
                persistent=False,
            )
        else:
            self.register_buffer("_w2_lin", None, persistent=False)
        self._bf16_linearized_ready = False

    def weight_loader_fused(
        self,
        param: torch.nn.Parameter,
        loaded_weight: torch.Tensor,
        weight_name: str,
        shard_id: str,
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_bf16_linearized_weights(
        self,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        raise NotImplementedError("removed by slim: never run in any recording")


    @staticmethod
    def _resolve_fp4_strategy(
        quant_config: QuantizationConfig | None, prefix: str
    ) -> SharedExpertFp4Strategy:
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self, x: torch.Tensor, gammas: torch.Tensor, use_reduce_scatter: bool = False
    ) -> torch.Tensor:
        """
        t: number of tokens (batch size * sequence length)
        s: n_shared_experts
        d: d_model
        f: shared_d_mlp
        """
        assert x.ndim in (2, 3), f"{x.shape=}"
        assert gammas.ndim in (2, 3), f"{gammas.shape=}"
        assert (
            gammas.size(-1) == self.n_shared_experts
        ), f"{gammas.shape=} {self.n_shared_experts=}"
        if self._fp4_strategy.serves_fp4:
            return self._forward_fp4(x, gammas, use_reduce_scatter)

        x_td = x.view(-1, x.size(-1)) if x.ndim != 2 else x
        gammas_ts = gammas.view(-1, gammas.size(-1)) if gammas.ndim != 2 else gammas

        linearized_weights = self.get_bf16_linearized_weights()
        if linearized_weights is not None:
            out_td = self._forward_bf16_linearized(
                x_td,
                gammas_ts,
                linearized_weights,
                use_reduce_scatter,
            )
            return out_td.view_as(x) if x.ndim == 2 else out_td

        gammas_st = gammas_ts.transpose(0, 1)

        # Match TorchTitan's accumulation precision.
        _bmm = torch.bmm

        x_std = x_td.unsqueeze(0).expand(self.n_shared_experts, -1, -1).contiguous()
        # Batch shared experts along dimension 0.
        y_st2f = _bmm(x_std, self.w13_weight.mT)
        y_stf = self._swiglu(y_st2f, gammas_st)
        z_std = _bmm(y_stf, self.w2_weight.mT)

        # Match TorchTitan by accumulating in FP32 before casting back.
        out_td = _sum_dim0(z_std)
        if not use_reduce_scatter and self.tp_group is not None:
            out_td = symm_mem_all_reduce(out_td, self.tp_group)
        return out_td.view_as(x) if x.ndim == 2 else out_td

    def _forward_bf16_linearized(
        self,
        x_td: torch.Tensor,
        gammas_ts: torch.Tensor,
        linearized_weights: tuple[torch.Tensor, torch.Tensor],
        use_reduce_scatter: bool,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    def _swiglu(self, y_st2f: torch.Tensor, gammas_st: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    # NVFP4 shared-expert serving uses the generic ModelOpt FP4 linears.

    def process_weights_after_loading(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")




    def _forward_fp4(
        self, x: torch.Tensor, gammas: torch.Tensor, use_reduce_scatter: bool = False
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")
