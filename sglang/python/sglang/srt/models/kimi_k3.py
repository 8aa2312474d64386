# Kimi-K3 multimodal model: KimiLinear text backbone + MoonViT3d vision tower.
# Based on kimi_linear.py with K3-specific features:
#   - Attention Residual (attn_res_block_size)
#   - Latent MoE (routed_expert_hidden_size)
#   - SiTU activation
#   - MLA output gate (mla_use_output_gate)
#   - Full-rank KDA gate (use_full_rank_gate)

import logging
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch
from torch import nn

from sglang.kernels.ops.attention.fla.fused_norm_gate import FusedRMSNormGated
from sglang.srt.configs.kimi_k3 import KimiK3Config
from sglang.srt.configs.kimi_linear import KimiLinearConfig
from sglang.srt.distributed import (
    divide,
    get_pp_group,
    get_tp_group,
    tensor_model_parallel_all_reduce,
)
from sglang.srt.distributed.device_communicators.pynccl_allocator import (
    use_symmetric_memory,
)
from sglang.srt.environ import envs
from sglang.srt.eplb.expert_distribution import get_global_expert_distribution_recorder
from sglang.srt.layers import (
    k3_ar_fusion,
    k3_gemm_ar,
    k3_sp_collective,
    zero_copy_context,
)
from sglang.srt.layers.activation import SiluAndMul, SituAndMul
from sglang.srt.layers.attn_residual import AttnResidual, aggregate_stream, get_cw
from sglang.srt.layers.dcp.planner import prepare_decode_context_parallel_metadata
from sglang.srt.layers.dp_attention import (
    dp_gather_replicate,
    dp_scatter,
    get_global_dp_buffer,
    get_local_dp_buffer,
    is_allocation_symmetric,
    is_dp_attention_enabled,
)
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.linear import (
    ColumnParallelBatchedLinear,
    ColumnParallelLinear,
    MergedColumnParallelLinear,
    MergedColumnParallelRepeatedLinear,
    QKVParallelLinear,
    ReplicatedLinear,
    RowParallelLinear,
)
from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.moe import route_quant_handoff
from sglang.srt.layers.moe.ep_moe.layer import get_moe_impl_class
from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE
from sglang.srt.layers.moe.topk import (
    TopK,
    TopKOutputFormat,
    build_precomputed_topk_output,
    precomputed_topk_postprocess_is_noop,
)
from sglang.srt.layers.moe.utils import (
    RoutingMethodType,
    get_moe_a2a_backend,
    get_moe_runner_backend,
)
from sglang.srt.layers.quantization.base_config import QuantizationConfig
from sglang.srt.layers.radix_linear_attention import RadixLinearAttention
from sglang.srt.layers.utils import PPMissingLayer, get_layer_id
from sglang.srt.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
    get_embedding_tp_kwargs,
)
from sglang.srt.managers.mm_utils import (
    MultiModalityDataPaddingPatternMultimodalTokens,
    general_mm_embed_routine,
)
from sglang.srt.managers.schedule_batch import (
    Modality,
    MultimodalDataItem,
    MultimodalInputs,
)
from sglang.srt.model_executor.forward_batch_info import ForwardBatch, PPProxyTensors
from sglang.srt.model_executor.runner import get_is_capture_mode
from sglang.srt.model_executor.runner_backend_utils.breakable_cuda_graph.context import (
    is_in_breakable_cuda_graph,
)
from sglang.srt.model_loader.weight_utils import (
    default_weight_loader,
    maybe_remap_kv_scale_name,
    sharded_weight_loader,
)
from sglang.srt.models.deepseek_v2 import DeepseekV2AttentionMLA, MoEGate
from sglang.srt.models.kimi_k3_vl import (
    KimiK3MultiModalProjector,
    KimiK3VisionTower,
)
from sglang.srt.models.transformers import maybe_prefix
from sglang.srt.models.utils import WeightsMapper
from sglang.srt.multimodal.mm_utils import materialize_multimodal_features
from sglang.srt.runtime_context import get_exec, get_parallel, get_server_args
from sglang.srt.utils import is_blackwell_supported, is_hip, make_layers
from sglang.srt.utils.common import (
    BumpAllocator,
    add_prefix,
    get_bool_env_var,
    rank0_log,
    require_mlp_sync,
    set_weight_attrs,
)

logger = logging.getLogger(__name__)
_is_hip = is_hip()
_aiter_k3_opt = get_bool_env_var("SGLANG_AITER_K3_OPT")


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


# MegaMoE SiTU sentinel: DeepGEMM 0.1.5.post1+ selects the K3 SiTU
# activation when activation_clamp == 0.03125 (2^-5: exactly representable and
# unused by any legitimate swiglu clamp; the host asserts clamp >= 0 so a
# negative sentinel is impossible). beta=4.0 / linear_beta=25.0 are baked into
# the DeepGEMM kernel.
_K3_MEGA_SITU_SENTINEL_CLAMP = 0.03125


def _k3_bf16_gemm(
    x: torch.Tensor,
    weight: torch.Tensor,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


# Fully fused KDA decode step (conv1d + delta rule + gated RMSNorm in one
# kernel, kernels/ops/attention/kda_fused_decode). The model hands the output-norm gate
# to the KDA backend via an attempt-and-verify stash on the attention layer;
# unconsumed stashes fall back to the unfused chain + o_norm here.


def _merge_weights_as_views(
    mods: list, pad_rows_to: int = 1
) -> tuple[torch.Tensor, list[int]]:
    raise NotImplementedError("removed by slim: never run in any recording")


# DP attention helpers.
#
# K3 cannot use LayerCommunicator: the attn-res aggregation kernels replace
# input_layernorm / post_attention_layernorm, which the communicator expects
# to own. Instead the MLP/MoE modules gather/scatter around their own body:
# attention and the attn-res buffers stay in local (per-DP-rank) token space,
# the MLP/MoE runs on the DP-gathered global batch with plain full-TP
# semantics (its internal all-reduces are unchanged and required — the latent
# reduce must happen in latent space before the norm), and the delayed
# prefix_sum add stays local, applied after the scatter back.


def _dp_local_buffer_group():
    raise NotImplementedError("removed by slim: never run in any recording")


def _sp_all_gather_rows(hidden_states: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def _sp_local_rows(hidden_states: torch.Tensor) -> slice:
    raise NotImplementedError("removed by slim: never run in any recording")


class KimiK3MLP(nn.Module):
    """K3 MLP; SiLU or SiTU activation."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        hidden_act: str,
        quant_config: Optional[QuantizationConfig] = None,
        reduce_results: bool = True,
        prefix: str = "",
        activation_situ_beta: float | None = None,
        activation_situ_linear_beta: float | None = None,
        tp_rank: Optional[int] = None,
        tp_size: Optional[int] = None,
    ) -> None:
        super().__init__()
        _tp_kwargs = (
            dict(tp_rank=tp_rank, tp_size=tp_size) if tp_size is not None else {}
        )
        self.gate_up_proj = MergedColumnParallelLinear(
            hidden_size,
            [intermediate_size] * 2,
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.gate_up_proj",
            **_tp_kwargs,
        )
        self.down_proj = RowParallelLinear(
            intermediate_size,
            hidden_size,
            bias=False,
            quant_config=quant_config,
            reduce_results=reduce_results,
            prefix=f"{prefix}.down_proj",
            **_tp_kwargs,
        )
        if hidden_act == "silu":
            self.act_fn = SiluAndMul()
        elif hidden_act == "situ":
            self.act_fn = SituAndMul(
                beta=activation_situ_beta or 1.0,
                linear_beta=activation_situ_linear_beta,
            )
        else:
            raise ValueError(f"Unsupported activation: {hidden_act}")
        self._dp_attention = is_dp_attention_enabled()

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        prefix_sum: Optional[torch.Tensor] = None,
        forward_batch: Optional[ForwardBatch] = None,
    ) -> torch.Tensor:
        # DP attention only when driven from the decoder layer (forward_batch
        # given); the shared-experts instance inside KimiK3MoE passes None and
        # runs on the already-gathered buffer.
        use_dp = self._dp_attention and forward_batch is not None
        if use_dp:
            local_hidden_states = hidden_states
            hidden_states = get_global_dp_buffer(get_tp_group())
            dp_gather_replicate(hidden_states, local_hidden_states, forward_batch)
        gate_up, _ = self.gate_up_proj(hidden_states)
        hidden_states = self.act_fn(gate_up)
        hidden_states, _ = self.down_proj(hidden_states)
        if use_dp:
            global_out = hidden_states
            hidden_states = get_local_dp_buffer(_dp_local_buffer_group())
            dp_scatter(hidden_states, global_out, forward_batch)
        # TODO(dark): maybe fuse residual with all reduce of down projection
        if prefix_sum is not None:
            hidden_states = hidden_states + prefix_sum
        return hidden_states


def _add3(
    a: torch.Tensor,
    b: torch.Tensor,
    c: Optional[torch.Tensor],
    *,
    prefetch_bc: bool = False,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


# One-shot log guard: proves the merged front is live (see _ep_front).
_EP_FRONT_LOGGED = False


def _o_proj_takes_output(o_proj: RowParallelLinear) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def _k3_symm_o_proj_out(o_proj: RowParallelLinear, x: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


class KimiK3MoE(nn.Module):
    """K3 MoE with Latent MoE (experts run in moe_hidden_size space)."""

    def __init__(
        self,
        config: KimiLinearConfig,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
        layer_idx: int = 0,
        alt_stream: Optional[torch.cuda.Stream] = None,
    ):
        super().__init__()
        hidden_size = config.hidden_size
        moe_intermediate_size = config.moe_intermediate_size
        moe_renormalize = config.moe_renormalize
        self.tp_size = get_parallel().tp_size
        self.routed_scaling_factor = config.routed_scaling_factor
        self.num_shared_experts = config.num_shared_experts
        self.layer_idx = layer_idx
        self.alt_stream = alt_stream
        self._dp_attention = is_dp_attention_enabled()

        self.use_latent_moe = config.routed_expert_hidden_size is not None
        # Merged front weight ([H, gate_up + E + latent]), built after weight
        # loading by _merge_front_weights().
        self._front_w: Optional[torch.Tensor] = None
        self._front_sizes: Optional[List[int]] = None
        # True when _front_w merges only [gate, routed_expert_down_proj] (the EP
        # a2a pair) rather than the three-way fused-front weight.
        self._front_is_ep_pair = False
        self.moe_hidden_size = (
            config.routed_expert_hidden_size if self.use_latent_moe else hidden_size
        )

        # Gate — fp32 output so routing (sigmoid, bias add, top-k) runs in
        # full precision (matches GateLinear in mke). codespell:ignore mke
        self.gate = MoEGate(config, quant_config=None, prefix=f"{prefix}.gate")

        # For MXFP4 compressed-tensors, replace quant_config with Mxfp4Config
        # so FusedMoE's weight_loader uses the MXFP4 fast path
        moe_quant_config = quant_config
        if quant_config is not None and getattr(quant_config, "quant_format", None):
            if "mxfp4" in quant_config.quant_format:
                from sglang.srt.layers.quantization.mxfp4 import Mxfp4Config

                moe_quant_config = Mxfp4Config(is_checkpoint_mxfp4_serialized=True)

        # Routed experts (operate in moe_hidden_size space)
        # gate_up_interleaved=False: K3 loads per-expert w1/w3 into non-interleaved layout
        self.experts = get_moe_impl_class(moe_quant_config)(
            num_experts=getattr(config, "n_routed_experts", config.num_experts),
            top_k=config.num_experts_per_token,
            hidden_size=self.moe_hidden_size,
            intermediate_size=config.moe_intermediate_size,
            layer_id=self.layer_idx,
            quant_config=moe_quant_config,
            routed_scaling_factor=self.routed_scaling_factor,
            activation=config.hidden_act,
            gemm1_alpha=config.activation_situ_beta,
            gemm1_clamp_limit=config.activation_situ_linear_beta,
            gate_up_interleaved=False,
            # trtllm fused-routing MoE backends (e.g. nvfp4 w4a4) route inside
            # the kernel and require the routing method; K3 uses DSv3-style
            # grouped topk with e_score_correction_bias.
            routing_method_type=getattr(
                config, "routing_method_type", RoutingMethodType.DeepSeekV3
            ),
            prefix=add_prefix("experts", prefix),
        )

        self.topk = TopK(
            top_k=config.num_experts_per_token,
            renormalize=moe_renormalize,
            use_grouped_topk=True,
            num_expert_group=config.num_expert_group,
            topk_group=config.topk_group,
            correction_bias=self.gate.e_score_correction_bias,
            quant_config=quant_config,
            routed_scaling_factor=self.routed_scaling_factor,
            apply_routed_scaling_factor_on_output=self.experts.should_fuse_routed_scaling_factor_in_topk,
            # flashinfer_mxfp4 + situ consumes precomputed routing
            # (PackedPrecomputed): keep the radix router in the TopK layer
            # and hand its ids/weights to the MoE op. Other quantized paths
            # keep the runner-resolved format (marlin -> standard anyway,
            # bypassed only for the public logits-routing path).
            output_format=(
                TopKOutputFormat.STANDARD
                if quant_config is None
                or (
                    config.hidden_act == "situ"
                    and get_moe_runner_backend().is_flashinfer_mxfp4()
                )
                # mega pre-dispatch consumes raw topk_ids/topk_weights
                or get_moe_a2a_backend().is_megamoe()
                else None
            ),
        )

        # MegaMoE (deep_gemm fused a2a+GEMM over the EP symm buffer): a drop-in
        # replacement for the routed experts call below. K3 routes ALL batches
        # through it when enabled — the megamoe backend's non-mega fallback is
        # a StandardDispatcher without a2a, which is wrong for scattered
        # tokens — so SGLANG_OPT_DEEPGEMM_MEGA_MOE_NUM_MAX_TOKENS_PER_RANK must
        # cover the per-rank prefill chunk. SiTU is selected inside the
        # DeepGEMM mega kernel via a sentinel activation_clamp with the K3
        # constants baked in.
        self._use_mega_moe = get_moe_a2a_backend().is_megamoe()
        self._mega_intermediate_size = moe_intermediate_size
        self._mega_top_k = config.num_experts_per_token
        if self._use_mega_moe:
            assert self.use_latent_moe and config.hidden_act == "situ"
            assert (
                config.activation_situ_beta,
                config.activation_situ_linear_beta,
            ) == (4.0, 25.0), (
                "mega SiTU kernel patch bakes beta=4.0/linear_beta=25.0; "
                "got a checkpoint with different constants"
            )

        # EP a2a backends (megamoe / DeepEP) move each row to its experts
        # directly, so the MoE region can consume whatever rows this rank
        # holds — an SP-MoE token shard (attn_tp > 1) or the DP-local batch
        # (DP attention) — with every global token dispatched exactly once.
        # No DP gather and no TP reduce is needed anywhere in the region.
        _a2a_backend = get_moe_a2a_backend()
        self._ep_a2a = _a2a_backend.is_megamoe() or _a2a_backend.is_deepep()

        # The flashinfer_mxfp4 (trtllm-gen) runner quantizes routed_input with
        # the strided-input JIT group quant (_use_jit_mxfp8_quant in mxfp4.py),
        # so the fused-front split view can be consumed as is; other runners
        # (e.g. marlin) require a dense buffer.
        self._moe_front_needs_contiguous = (
            not get_moe_runner_backend().is_flashinfer_mxfp4()
        )

        # Defer the trtllm-gen finalize (top-k weighted unpermute) out of the
        # MoE op and fuse it into the push all-reduce's staging pass
        # (k3_ar_fusion.finalize_all_reduce_push_norm): the rank-local latent
        # never materializes. Only the situ packed-routing trtllm-gen path
        # serves the deferral; sizes beyond the push window fall back to the
        # in-op finalize at runtime (finalize_push_fits).
        self._defer_moe_finalize = (
            get_moe_runner_backend().is_flashinfer_mxfp4()
            and config.hidden_act == "situ"
        )

        # Shared experts (operate in original hidden_size space).
        # Replicate the shared-expert weights (tp1, DSv2 convention) under EP
        # a2a: the block runs on partial batches (shard / DP-local rows), and
        # a TP-sharded partial sum could never be reduced across ranks that
        # hold different tokens.
        self._shared_experts_tp1 = self._ep_a2a
        if self.num_shared_experts is not None and self.num_shared_experts > 0:
            shared_intermediate_size = moe_intermediate_size * self.num_shared_experts
            self.shared_experts = KimiK3MLP(
                hidden_size=config.hidden_size,
                intermediate_size=shared_intermediate_size,
                hidden_act=config.hidden_act,
                quant_config=quant_config,
                reduce_results=False,
                prefix=f"{prefix}.shared_experts",
                activation_situ_beta=config.activation_situ_beta,
                activation_situ_linear_beta=config.activation_situ_linear_beta,
                **(dict(tp_rank=0, tp_size=1) if self._shared_experts_tp1 else {}),
            )
        else:
            self.shared_experts = None

        # SBO (single batch overlap): the shared experts read a fixed slab of
        # weights the routed path never touches (bf16 — the checkpoint leaves
        # shared_experts unquantized — and tp1-replicated under EP a2a, so
        # ~264 MB per layer per rank), while the routed path is a2a-latency
        # bound in decode with HBM mostly idle. Issue the shared experts on the
        # side stream so the two run concurrently instead of back to back; the
        # join happens right before the tail add. Measured on 2x4 GB300
        # (TP8/EP8 MegaMoE + SP-MoE): +4~5% output tok/s and −5% ITL over
        # bs 1–32, GSM8K unchanged — so it is on whenever the shape allows,
        # no flag.
        # EP a2a only: with plain-TP experts the fused front already lands both
        # partial sums in one collective (_forward_fused), a strictly better
        # overlap than two streams.
        self._sbo_shared_overlap = (
            self._ep_a2a
            and self.shared_experts is not None
            and self.alt_stream is not None
        )

        if self.use_latent_moe:
            self.routed_expert_down_proj = ReplicatedLinear(
                hidden_size,
                self.moe_hidden_size,
                bias=False,
                quant_config=None,
                prefix=f"{prefix}.routed_expert_down_proj",
            )
            self.routed_expert_norm = (
                RMSNorm(self.moe_hidden_size, eps=config.rms_norm_eps)
                if config.latent_moe_use_norm
                else None
            )
            self.routed_expert_up_proj = ReplicatedLinear(
                self.moe_hidden_size,
                hidden_size,
                bias=False,
                quant_config=None,
                prefix=f"{prefix}.routed_expert_up_proj",
            )
        else:
            self.routed_expert_down_proj = None
            self.routed_expert_norm = None
            self.routed_expert_up_proj = None

        # Static eligibility for fusing the fused-front latent all-reduce with
        # the RMSNorm epilogue (SGLANG_K3_AR_FUSION). The kernel views the flat
        # [latent | shared] buffer as [3N, NORM_DIM] rows and norms the first N,
        # so it requires latent width == NORM_DIM and shared width == 2*NORM_DIM
        # (K3: 3584 / 7168). Decided once here so the hot path only reads a bool
        # and never re-validates dims per forward.
        self.fuse_ar_norm = (
            self.routed_expert_norm is not None
            and self.moe_hidden_size == k3_ar_fusion.NORM_DIM
            and hidden_size == 2 * k3_ar_fusion.NORM_DIM
        )
        # Static eligibility for the column-parallel up_proj tail (gemm_ag):
        # per-rank 1/8-column GEMV -> multicast all-gather staged in the v2
        # push workspace -> spin-add3 with shared_output (+ prefix_sum),
        # replacing the replicated [3584, 7168] GEMM + _add3 (~1.5-2x at
        # decode sizes, 1/8 of the weight bytes read per rank). Kernel dims
        # are fixed to fuse_ar_norm's (3584 -> 7168) over TP8; per-batch
        # capacity checks live in k3_ar_fusion.gemm_ag_up_fits.
        self._gemm_ag_up_eligible = (
            self.fuse_ar_norm
            and self.tp_size == 8
            and self.routed_expert_up_proj is not None
            and isinstance(self.routed_expert_up_proj.weight, torch.Tensor)
            and self.routed_expert_up_proj.weight.dtype == torch.bfloat16
            and self.routed_expert_up_proj.weight.is_contiguous()
        )

    def _merge_front_weights(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    @cached_property
    def _routed_needs_reduce(self):
        return self.tp_size > 1 and get_moe_a2a_backend().is_none()

    @cached_property
    def _eligible_for_fused_front(self) -> bool:
        """The fused front commits to the single-collective tail (both
        partial sums in one symmetric buffer), so beyond the merged front
        weight it requires plain-TP routed sums (an a2a combine already
        returns the complete sum — all-reducing it again would multiply by
        tp_size) and a dense shared down weight for the direct out= GEMM."""
        return (
            self.use_latent_moe
            and self.shared_experts is not None
            and self._front_w is not None
            and not self._front_is_ep_pair
            and get_moe_a2a_backend().is_none()
            and self.shared_experts.down_proj.weight.dtype
            in (torch.bfloat16, torch.float16)
        )



    @cached_property
    def _routing_contract_ok(self) -> bool:
        """Whether a kernel may emit (weights, ids) itself and bypass
        select_experts. Shared by the fused router and the merged front."""
        if self._eligible_for_fused_front:
            return False
        cfg = self.topk.topk_config
        if cfg.output_format is not TopKOutputFormat.STANDARD:
            return False
        # The kernel implements sigmoid scoring with bias-ranked ungrouped top-k.
        # Do NOT test cfg.scoring_func: it defaults to "softmax" and TopK
        # documents it as unused. What actually selects sigmoid is the
        # grouped-topk-with-correction-bias route (DSv3 noaux_tc), which calls
        # biased_grouped_topk and hardwires scoring_func="sigmoid".
        if not (cfg.use_grouped_topk and cfg.correction_bias is not None):
            return False
        if (cfg.num_expert_group or 1) > 1 or (cfg.topk_group or 1) > 1:
            return False
        # A waterfill balancer rewrites the routing after the top-k; leave it on
        # the layer path that supports it.
        if self.topk.waterfill_balancer is not None or self.topk.enable_waterfill:
            return False
        if self.gate.e_score_correction_bias is None:
            return False
        # K3 calls self.topk() without a padding mask or EPLB dispatch info, so
        # select_experts' post-processing collapses to the capture hook and the
        # recorder -- both of which build_precomputed_topk_output runs. Bail out
        # if that ever stops holding rather than silently dropping the remap.
        if not precomputed_topk_postprocess_is_noop(cfg):
            return False
        if get_exec().deterministic.enable_deterministic_inference:
            return False
        try:
            from sglang.kernels.ops.moe import moe_front
        except Exception:
            return False
        return moe_front.available()

    @cached_property
    def _ep_front_eligible(self) -> bool:
        """Static eligibility for the merged EP front (gate + latent down-proj in
        one GEMM). Requires the two-module merge from _merge_front_weights and the
        same routing contract the single-kernel router needs."""
        return (
            envs.SGLANG_K3_FUSED_FRONT.get()
            and self._front_w is not None
            and self._front_is_ep_pair
            and self.use_latent_moe
            and self.routed_expert_down_proj is not None
            and self._routing_contract_ok
        )




    def _forward_unfused(
        self, hidden_states: torch.Tensor, *, prefix_sum: Optional[torch.Tensor]
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    @cached_property
    def _route_quant_fuse_eligible(self) -> bool:
        """Whether to stage routed_input for the fused route+pack+quant launch
        (route_quant_handoff). Only the trtllm-gen SiTU runner with mxfp8
        activations consumes the staged quant, so only that runner stages."""
        from sglang.srt.layers.quantization.mxfp4 import Mxfp4MoEMethod

        method = self.experts.quant_method
        return (
            isinstance(method, Mxfp4MoEMethod)
            and method.use_flashinfer
            and not method.use_marlin
            and method.flashinfer_mxfp4_moe_precision == "default"
            and self.experts.moe_runner_config.activation == "situ"
        )

    def _forward_routed(self, hidden_states, router_logits, routed_input, latent):
        raise NotImplementedError("removed by slim: never run in any recording")




    def _forward_fused(
        self, hidden_states: torch.Tensor, *, prefix_sum: Optional[torch.Tensor]
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        prefix_sum: Optional[torch.Tensor] = None,
        forward_batch: Optional[ForwardBatch] = None,
    ) -> torch.Tensor:
        """A pending prefix_sum is always consumed here: folded into the
        3-way JIT tail add when covered, plain adds otherwise (bit-identical
        either way).

        Under DP attention with TP-sharded experts (a2a none, forward_batch
        given) the experts run on the DP-gathered global batch — the internal
        reduces stay over the full TP group, which is exactly right in
        gathered space — while prefix_sum stays in local token space, added
        after the scatter back. EP a2a backends skip the gather entirely:
        dispatching the DP-local rows (or the SP-MoE shard of them the
        decoder layer already produced) covers every global token exactly
        once, and prefix_sum is consumed in the tail add like the non-DP
        path — gathering first would just replicate the whole batch onto
        every rank (tp-fold redundant compute + a2a traffic)."""
        num_tokens, hidden_size = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_size)
        use_dp = self._dp_attention and forward_batch is not None and not self._ep_a2a
        if use_dp:
            local_hidden_states = hidden_states
            hidden_states = get_global_dp_buffer(get_tp_group())
            dp_gather_replicate(hidden_states, local_hidden_states, forward_batch)
            dp_prefix_sum, prefix_sum = prefix_sum, None
        if hidden_states.shape[0] > 0 and self._eligible_for_fused_front:
            out = self._forward_fused(hidden_states, prefix_sum=prefix_sum)
        else:
            out = self._forward_unfused(hidden_states, prefix_sum=prefix_sum)
        if use_dp:
            global_out = out
            out = get_local_dp_buffer(_dp_local_buffer_group())
            dp_scatter(out, global_out, forward_batch)
            if dp_prefix_sum is not None:
                out = out + dp_prefix_sum
        return out.view(num_tokens, hidden_size)


class KimiK3DeltaAttention(nn.Module):
    """KDA attention; optional full-rank gate."""

    def __init__(
        self,
        layer_idx: int,
        hidden_size: int,
        config: KimiLinearConfig,
        quant_config: Optional[QuantizationConfig] = None,
        rms_norm_eps: float = 1e-5,
        prefix: str = "",
        all_reduce_fusion: bool = False,
        bfa_alt_stream: Optional[torch.cuda.Stream] = None,
        **kwargs,
    ) -> None:
        super().__init__()
        self.all_reduce_fusion = all_reduce_fusion
        # Side stream for the [f_a|b] + f_b tiny GEMVs: they read only
        # hidden_states, so they can run concurrently with the wide fused
        # [q,k,v,g] GEMM on the main stream (graphed decode/verify only).
        # Same SM bound rationale as the MLA gate stream.
        self._bfa_alt_stream = bfa_alt_stream
        self._bfa_bs_limit = (
            (128 if is_blackwell_supported() else 64)
            if bfa_alt_stream is not None
            else 0
        )
        self.tp_size = get_parallel().tp_size
        # KDA is an attention layer: all head-sharded params must follow the
        # attention-TP group (= tp under plain TP, = 1 under DP attention),
        # matching the mamba state cache sizing (KimiLinearCacheParams uses
        # get_attention_tp_size). Mirrors GLM5-next's head_shard_size pattern.
        self.attn_tp_size = get_parallel().attn_tp_size
        self.attn_tp_rank = get_parallel().attn_tp_rank
        self.hidden_size = hidden_size
        self.config = config
        self.head_dim = config.linear_attn_config["head_dim"]
        self.num_heads = config.linear_attn_config["num_heads"]
        self.num_k_heads = config.linear_attn_config["num_heads"]
        self.num_v_heads = config.linear_attn_config["num_heads"]
        self.head_k_dim = config.linear_attn_config["head_dim"]
        self.head_v_dim = config.v_head_dim
        self.layer_idx = layer_idx
        self.prefix = prefix
        assert self.num_heads % self.attn_tp_size == 0
        self.local_num_heads = divide(self.num_heads, self.attn_tp_size)

        projection_size = self.head_dim * self.num_heads
        self.conv_size = config.linear_attn_config["short_conv_kernel_size"]
        self.use_full_rank_gate = config.linear_attn_config.get(
            "use_full_rank_gate", False
        )

        # The fused path hardcodes tp_size sharding, so require attn_tp == tp.
        # For the full-rank gate (K3) the checkpoint quantizes only the MoE
        # experts; attention linears resolve to UnquantizedLinearMethod, so a
        # non-None quant_config is fine for the merged projection.
        self.do_fuse_qkvbfg = self.attn_tp_size == self.tp_size and (
            quant_config is None or self.use_full_rank_gate
        )

        if self.do_fuse_qkvbfg and self.use_full_rank_gate:
            # Fuse only the alignment-friendly wide projections [q, k, v, g]
            # (6144/rank at TP8). Folding b (12/rank) and f_a (128, replicated)
            # in as well skews the output dim to 6284 and measurably degrades
            # the GEMM kernel selection; they stay as separate tiny GEMVs.
            self.fused_qkvg_proj = MergedColumnParallelLinear(
                self.hidden_size,
                [
                    projection_size,
                    projection_size,
                    projection_size,
                    projection_size,
                ],
                bias=False,
                quant_config=quant_config,
                tp_rank=self.attn_tp_rank,
                tp_size=self.attn_tp_size,
                prefix=f"{prefix}.fused_qkvg_proj",
            )
            self.split_sizes = [
                3 * projection_size // self.tp_size,
                projection_size // self.tp_size,
            ]
            self.b_proj = ColumnParallelLinear(
                self.hidden_size,
                self.num_heads,
                bias=False,
                quant_config=quant_config,
                tp_rank=self.attn_tp_rank,
                tp_size=self.attn_tp_size,
                prefix=f"{prefix}.b_proj",
            )
            self.f_a_proj = ReplicatedLinear(
                self.hidden_size,
                self.head_dim,
                bias=False,
                quant_config=quant_config,
                prefix=f"{prefix}.f_a_proj",
            )
            self.f_b_proj = ColumnParallelLinear(
                self.head_dim,
                projection_size,
                bias=False,
                quant_config=quant_config,
                tp_rank=self.attn_tp_rank,
                tp_size=self.attn_tp_size,
                prefix=f"{prefix}.f_b_proj",
            )
            # Merged [f_a | b] weight, built after weight loading by
            # _merge_bfa_weights().
            self._bfa_w: Optional[torch.Tensor] = None
        elif self.do_fuse_qkvbfg:
            self.qkvb_sizes = [
                projection_size,
                projection_size,
                projection_size,
                self.num_heads,
            ]
            self.fg_sizes = [self.head_dim, self.head_dim]

            self.fused_qkvbfg_a_proj = MergedColumnParallelRepeatedLinear(
                self.hidden_size,
                self.qkvb_sizes,
                self.fg_sizes,
                quant_config=quant_config,
                prefix=f"{prefix}.fused_qkvbfg_a_proj",
            )
            self.split_sizes = [
                3 * projection_size // self.tp_size,
                self.num_heads // self.tp_size,
                2 * self.head_dim,
            ]
            _dtype = config.dtype
            if isinstance(_dtype, str):
                _dtype = getattr(torch, _dtype, torch.bfloat16)
            self.fused_fg_b_proj = ColumnParallelBatchedLinear(
                2, self.head_dim, projection_size, dtype=_dtype
            )
        else:
            attn_tp_rank = self.attn_tp_rank
            self.qkv_proj = QKVParallelLinear(
                self.hidden_size,
                self.head_dim,
                self.num_heads,
                self.num_k_heads,
                bias=False,
                quant_config=quant_config,
                tp_rank=attn_tp_rank,
                tp_size=self.attn_tp_size,
                v_head_size=self.head_v_dim,
                prefix=f"{prefix}.qkv_proj",
            )

            self.f_a_proj = ReplicatedLinear(
                self.hidden_size,
                self.head_dim,
                bias=False,
                quant_config=quant_config,
                prefix=f"{prefix}.f_a_proj",
            )
            self.f_b_proj = ColumnParallelLinear(
                self.head_dim,
                projection_size,
                bias=False,
                quant_config=quant_config,
                tp_rank=attn_tp_rank,
                tp_size=self.attn_tp_size,
                prefix=f"{prefix}.f_b_proj",
            )
            self.b_proj = ColumnParallelLinear(
                self.hidden_size,
                self.num_heads,
                bias=False,
                quant_config=quant_config,
                tp_rank=attn_tp_rank,
                tp_size=self.attn_tp_size,
                prefix=f"{prefix}.b_proj",
            )

            if self.use_full_rank_gate:
                self.g_proj = ColumnParallelLinear(
                    self.hidden_size,
                    projection_size,
                    bias=False,
                    quant_config=quant_config,
                    tp_rank=attn_tp_rank,
                    tp_size=self.attn_tp_size,
                    prefix=f"{prefix}.g_proj",
                )
            else:
                self.g_a_proj = ReplicatedLinear(
                    self.hidden_size,
                    self.head_dim,
                    bias=False,
                    quant_config=quant_config,
                    prefix=f"{prefix}.g_a_proj",
                )
                self.g_b_proj = ColumnParallelLinear(
                    self.head_dim,
                    projection_size,
                    bias=False,
                    quant_config=quant_config,
                    tp_rank=attn_tp_rank,
                    tp_size=self.attn_tp_size,
                    prefix=f"{prefix}.g_b_proj",
                )

        self.dt_bias = nn.Parameter(
            torch.empty(divide(projection_size, self.attn_tp_size), dtype=torch.float32)
        )
        set_weight_attrs(self.dt_bias, {"weight_loader": sharded_weight_loader(0)})

        self.qkv_conv1d = MergedColumnParallelLinear(
            input_size=self.conv_size,
            output_sizes=[projection_size, projection_size, projection_size],
            bias=False,
            params_dtype=torch.float32,
            tp_rank=self.attn_tp_rank,
            tp_size=self.attn_tp_size,
            prefix=f"{prefix}.qkv_conv1d",
        )
        self.qkv_conv1d.weight.data = self.qkv_conv1d.weight.data.unsqueeze(1)

        # K3 checkpoint stores A_log as [head_dim] (128), but the FLA kernel
        # expects exactly local_num_heads elements.  We define the param as
        # [1, 1, local_num_heads, 1] (matching the kimi_linear.py convention)
        # and attach a custom weight_loader that handles both the old 4-D
        # format and the K3 1-D [head_dim] format by narrowing to the first
        # num_heads elements then TP-sharding.
        self.A_log = nn.Parameter(
            torch.empty(1, 1, self.local_num_heads, 1, dtype=torch.float32)
        )

        def _a_log_weight_loader(
            param: torch.Tensor, loaded_weight: torch.Tensor
        ) -> None:
            tp_rank = get_parallel().attn_tp_rank
            shard_size = param.data.shape[2]  # local_num_heads
            start_idx = tp_rank * shard_size

            # Handle old 4-D checkpoint format: [1, 1, H, 1] -> [H]
            if loaded_weight.dim() == 4:
                loaded_weight = loaded_weight.view(loaded_weight.shape[2])
            # Now loaded_weight is 1-D (either [num_heads] or [head_dim]).
            # Narrow to the TP shard along the head dimension.
            loaded_weight = loaded_weight.narrow(0, start_idx, shard_size)
            # Reshape to match param shape [1, 1, local_num_heads, 1]
            param.data.copy_(loaded_weight.view(param.data.shape))

        set_weight_attrs(self.A_log, {"weight_loader": _a_log_weight_loader})

        self.o_norm = FusedRMSNormGated(
            self.head_dim, eps=rms_norm_eps, activation="sigmoid"
        )
        self.o_proj = RowParallelLinear(
            projection_size,
            self.hidden_size,
            bias=False,
            # SGLANG_K3_AR_FUSION: keep the o_proj output TP-partial and
            # complete the reduce at the decoder layer via the fused MNNVL
            # all-reduce (which can fold the attn-res prefix add in). Only
            # valid when the attn TP group is the full TP group (the fused
            # comm lives there).
            reduce_results=not self.all_reduce_fusion,
            quant_config=quant_config,
            tp_rank=self.attn_tp_rank,
            tp_size=self.attn_tp_size,
            # Reduce within the attn-TP group: the default reduce path uses
            # the full-TP collective, which at attn_tp>1 is both the wrong
            # group (sums across DP groups) and asymmetric vs idle DP ranks
            # (deadlocks the per-layer DP gather). Off under all_reduce_fusion:
            # the fused AR does the reduce itself (reduce_results=False) and the
            # forward hands o_proj a slice of a persistent symmetric region —
            # leaving this True would wrap the GEMM in
            # use_symmetric_memory(attn_tp), which allocates its own output and
            # so defeats the caller-owned buffer. At the fusion config
            # attn_tp==tp so the fused full-TP reduce is the same group anyway.
            use_dp_attention_reduce=not self.all_reduce_fusion,
            prefix=f"{prefix}.o_proj",
        )
        if self.all_reduce_fusion and not _o_proj_takes_output(self.o_proj):
            # the fused AR reduces o_proj's output in place out of a symmetric
            # buffer, which needs the GEMM to write into caller-owned storage
            self.all_reduce_fusion = False
            self.o_proj.reduce_results = True
            self.o_proj.use_dp_attention_reduce = True
        k3_gemm_ar.maybe_wrap_o_proj(self.o_proj)
        conv_weights = self.qkv_conv1d.weight.squeeze(1)
        bias = self.qkv_conv1d.bias

        self.attn = RadixLinearAttention(
            layer_id=self.layer_idx,
            num_q_heads=self.num_k_heads // self.attn_tp_size,
            num_k_heads=self.num_k_heads // self.attn_tp_size,
            num_v_heads=self.num_v_heads // self.attn_tp_size,
            head_q_dim=self.head_k_dim,
            head_k_dim=self.head_k_dim,
            head_v_dim=self.head_v_dim,
            conv_weights=conv_weights,
            bias=bias,
            A_log=self.A_log,
            dt_bias=self.dt_bias,
        )
        # KDA safe gate: checkpoint trained with gate_lower_bound=-5.0
        self.attn.lower_bound = config.linear_attn_config.get("gate_lower_bound", None)
        # Set by _prepare_fused_decode() once weights are loaded.
        self._kda_fused_decode_ready = False

    def forward_qkvbfg(self, hidden_states: torch.Tensor):
        raise NotImplementedError("removed by slim: never run in any recording")



    def forward_qkvbfg_fused(self, hidden_states: torch.Tensor):
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        hidden_states: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        zero_allocator: BumpAllocator,
    ) -> torch.Tensor:
        if self.do_fuse_qkvbfg:
            mixed_qkv, beta, forget_gate, g_proj_states = self.forward_qkvbfg_fused(
                hidden_states
            )
        else:
            mixed_qkv, beta, forget_gate, g_proj_states = self.forward_qkvbfg(
                hidden_states
            )

        if not forward_batch.forward_mode.is_decode():
            forget_gate = forget_gate.unflatten(-1, (-1, self.head_dim))
            if not forward_batch.forward_mode.is_target_verify():
                # Only chunk_kda (extend) wants pre-activated beta; the verify
                # kernel sigmoids it in-kernel like decode.
                beta = beta.float().sigmoid()
            forget_gate = forget_gate.unsqueeze(0)
        beta = beta.unsqueeze(0)

        # Fused KDA handoff (attempt-and-verify): offer the output-norm gate
        # so covered decode and target-verify kernels can fold gated RMSNorm
        # into the recurrence kernel. If the backend leaves the stash
        # unconsumed (env off or shape not covered), apply o_norm here as
        # before.
        fused_onorm = self._kda_fused_decode_ready and (
            forward_batch.forward_mode.is_decode()
            or forward_batch.forward_mode.is_target_verify()
        )
        if fused_onorm:
            self.attn._k3_onorm_gate = g_proj_states
            self.attn._k3_onorm_consumed = False

        core_attn_out = self.attn(
            forward_batch,
            mixed_qkv=mixed_qkv,
            a=forget_gate,
            b=beta,
        )

        if fused_onorm:
            self.attn._k3_onorm_gate = None
            fused_onorm = self.attn._k3_onorm_consumed
        if not fused_onorm:
            norm_gate = g_proj_states.unflatten(-1, (-1, self.head_dim))
            core_attn_out = self.o_norm(core_attn_out, norm_gate)
        core_attn_out = core_attn_out.squeeze(0).flatten(-2)
        if self.all_reduce_fusion:
            out = _k3_symm_o_proj_out(self.o_proj, core_attn_out)
            partial, _ = self.o_proj(core_attn_out, output_tensor=out)
            return partial
        return self.o_proj(core_attn_out)[0]


class KimiK3MLAAttention(DeepseekV2AttentionMLA):
    """MLA with output gate for K3. Gate is applied in TP-local space before o_proj."""

    def __init__(
        self,
        config,
        layer_idx: int,
        quant_config: Optional[QuantizationConfig] = None,
        all_reduce_fusion: bool = False,
        prefix: str = "",
        alt_stream: Optional[torch.cuda.Stream] = None,
        gate_alt_stream: Optional[torch.cuda.Stream] = None,
    ) -> None:
        self.all_reduce_fusion = all_reduce_fusion
        self.use_output_gate = getattr(config, "mla_use_output_gate", False)
        super().__init__(
            layer_id=layer_idx,
            hidden_size=config.hidden_size,
            num_heads=config.num_attention_heads,
            quant_config=quant_config,
            prefix=prefix,
            config=config,
            qk_nope_head_dim=config.qk_nope_head_dim,
            qk_rope_head_dim=config.qk_rope_head_dim,
            v_head_dim=config.v_head_dim,
            q_lora_rank=config.q_lora_rank,
            kv_lora_rank=config.kv_lora_rank,
            skip_rope=True,
            reduce_results=not self.all_reduce_fusion,
            alt_stream=alt_stream,
        )
        # Installed before the output-gate wrap below so the gate multiply is
        # applied to x before the fused GEMM+AR sees it.
        if self.all_reduce_fusion and not _o_proj_takes_output(self.o_proj):
            # the fused AR reduces o_proj's output in place out of a symmetric
            # buffer, which needs the GEMM to write into caller-owned storage
            self.all_reduce_fusion = False
            self.o_proj.reduce_results = True
            self.o_proj.use_dp_attention_reduce = True
        k3_gemm_ar.maybe_wrap_o_proj(self.o_proj)
        if self.all_reduce_fusion:
            # reduce_results=False was passed through super().__init__ above;
            # the fused all-reduce does the reduce itself and reduces the o_proj
            # output in place, so hand the GEMM a slice of the persistent
            # symmetric buffer (k3_ar_fusion.symm_buffer) and do NOT set
            # use_dp_attention_reduce — its inner attn_tp symm_ctx allocates its
            # own output and would defeat the caller-owned buffer. At the fusion
            # config (attn_tp==tp) the fused full-TP reduce is the same group as
            # the attn_tp reduce.
            # The wrap is installed before the output-gate wrap below so the
            # gate multiply stays outside it and only the o_proj GEMM writes the
            # region slice. NOTE: the captured name must differ from the
            # gate block's `_orig_o_proj_forward` — closures capture the
            # __init__ local by reference, and reusing the name would rebind it
            # to this wrapper (infinite recursion + nested pool enter).
            _symm_inner_o_proj_forward = self.o_proj.forward
            _symm_o_proj = self.o_proj

            def _symm_o_proj_forward(x, *args, **kwargs):
                return _symm_inner_o_proj_forward(
                    x,
                    *args,
                    output_tensor=_k3_symm_o_proj_out(_symm_o_proj, x),
                    **kwargs,
                )

            self.o_proj.forward = _symm_o_proj_forward
        else:
            # K3 has no LayerCommunicator, so o_proj (reduce_results=True by
            # default here, unlike deepseek's communicator flow) must reduce
            # within the attn-TP group itself — the default full-TP collective
            # is the wrong group at attn_tp>1 and deadlocks against idle DP
            # ranks.
            self.o_proj.use_dp_attention_reduce = True
        if self.use_output_gate:
            projection_size = config.num_attention_heads * config.v_head_dim
            # Shard by attn-TP to match the attention output (DSV2 MLA shards
            # heads across the attention-TP group, not the global TP group).
            self.g_proj = ColumnParallelLinear(
                config.hidden_size,
                projection_size,
                bias=False,
                quant_config=quant_config,
                tp_rank=get_parallel().attn_tp_rank,
                tp_size=get_parallel().attn_tp_size,
                prefix=f"{prefix}.g_proj",
            )
            # Output gate must multiply the TP-local attention output right
            # before o_proj (vLLM: attn_out * sigmoid(g_proj(hidden_states))).
            # o_proj is invoked deep inside DeepseekV2AttentionMLA forward
            # cores, so wrap its forward at the instance level; the module
            # itself (weights, reduce_results, loading path) is untouched.
            self._gate_hidden_states = None
            # (gate, producer stream) issued on the alt stream by forward();
            # None when the lazy path computes the gate here instead.
            self._gate_precomputed = None
            self._gate_alt_stream = gate_alt_stream
            # Above this token count the attention-core kernels fill the SMs
            # on their own and the overlap only adds sync overhead (same
            # bound as deepseek_v4).
            self._gate_bs_limit = (
                (128 if is_blackwell_supported() else 64)
                if self._gate_alt_stream is not None
                else 0
            )
            _orig_o_proj_forward = self.o_proj.forward

            def _gated_o_proj_forward(x, *args, **kwargs):
                gate_input = self._gate_hidden_states
                self._gate_hidden_states = None
                precomputed = self._gate_precomputed
                self._gate_precomputed = None
                if precomputed is not None:
                    # Use wait_stream rather than an explicit event so the
                    # breakable-CUDA-graph runner can track the side-stream
                    # join across graph-segment boundaries.
                    torch.cuda.current_stream().wait_stream(precomputed[1])
                if gate_input is not None and not isinstance(x, tuple):
                    gate = (
                        precomputed[0]
                        if precomputed is not None
                        else self.g_proj(gate_input)[0]
                    )
                    from sglang.kernels.ops.kimi_k3 import mla_output_gate

                    if mla_output_gate.covered(x, gate):
                        # One kernel for x * sigmoid(gate); double rounding
                        # matches the unfused pair bit-for-bit.
                        x = mla_output_gate.kimi_k3_mla_output_gate(x, gate)
                    else:
                        x = x * torch.sigmoid(gate)
                return _orig_o_proj_forward(x, *args, **kwargs)

            self.o_proj.forward = _gated_o_proj_forward

    def _precompute_output_gate(self, hidden_states: torch.Tensor) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        forward_batch: ForwardBatch,
        zero_allocator: BumpAllocator,
        **kwargs,
    ):
        if self.use_output_gate:
            self._gate_hidden_states = hidden_states
            self._precompute_output_gate(hidden_states)
        return super().forward(
            positions, hidden_states, forward_batch, zero_allocator, **kwargs
        )


class KimiK3DecoderLayer(nn.Module):
    """Decoder layer carrying the K3 attention-residual stream."""

    def __init__(
        self,
        config: KimiLinearConfig,
        layer_idx: int,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
        alt_streams: Optional[List[torch.cuda.Stream]] = None,
    ) -> None:
        super().__init__()
        self.hidden_size = config.hidden_size
        self.is_moe = config.is_moe
        self.layer_idx = layer_idx
        self._dp_attention = is_dp_attention_enabled()
        # mlp-sync (DP attention OR MoE a2a/EP) pads extend batches to
        # attn_tp multiples; attention must then run on the real rows only.
        self._trim_padded_attn = require_mlp_sync(get_server_args())
        # A layer runs MoE (vs a plain dense MLP) iff it is past the dense
        # prefix and on the MoE cadence — same predicate the mlp construction
        # below uses.
        self._is_moe_layer = (
            self.is_moe
            and config.num_experts is not None
            and layer_idx >= config.first_k_dense_replace
            and layer_idx % config.moe_layer_freq == 0
        )
        # SP-MoE (EP a2a backend — megamoe or DeepEP): o_proj defers its
        # attention-TP reduction; this layer completes it as a reduce-scatter
        # so the whole MoE region (agg2, norms, gate, latent projs, tp1
        # shared experts, EP a2a dispatch) runs on 1/attn_tp of the rows,
        # then all-gathers rows back after the MoE tail add. RS+AG moves the
        # same bytes the o_proj all-reduce did, the shared-expert all-reduce
        # disappears via tp1 weights, and each rank dispatches only its shard
        # through the a2a (kills the attn_tp-fold dispatch redundancy) —
        # strictly less communication + MoE-front compute /attn_tp. Works the
        # same under DP attention: the attn_tp group is then the
        # within-replica subgroup, rows are the DP-local batch, and
        # KimiK3MoE skips the DP gather under EP a2a so the shard flows
        # straight into the a2a. With attn_tp == 1 (full DP attention) there
        # is no attention reduce to convert — the MoE-side gather skip alone
        # removes the replication. Dense layers are excluded: their
        # column-parallel MLP has no per-token decomposition that survives a
        # token shard.
        _a2a_backend = get_moe_a2a_backend()
        self._sp_moe = (
            (_a2a_backend.is_megamoe() or _a2a_backend.is_deepep())
            and self._is_moe_layer
            and get_parallel().attn_tp_group.world_size > 1
        )

        # The fused all-reduce only serves the attn-res path (attn_res is
        # config-static), so the standard path stays byte-for-byte untouched
        # and always sees a reduced attention output.
        # Mutually exclusive with SP-MoE: both complete o_proj's deferred
        # reduction, but SP-MoE reduce-scatters to a shard whereas the fusion
        # produces the full batch in a symm buffer — an SP-MoE layer builds
        # o_proj in the plain deferred-reduce config (reduce_results forced off
        # below) and reduce-scatters instead.
        attn_tp_size = get_parallel().attn_tp_size
        self.all_reduce_fusion = (
            not self._sp_moe
            and attn_tp_size > 1
            and attn_tp_size == get_parallel().tp_size
            and config.attn_res_block_size is not None
            and k3_ar_fusion.enabled()
        )

        # Attention
        if config.is_kda_layer(layer_idx):
            self.self_attn = KimiK3DeltaAttention(
                layer_idx=layer_idx,
                hidden_size=config.hidden_size,
                config=config,
                quant_config=quant_config,
                prefix=f"{prefix}.self_attn",
                all_reduce_fusion=self.all_reduce_fusion,
                # Shared with the MLA gate stream: KDA and MLA layers never
                # run concurrently within one forward, so the stream is free.
                bfa_alt_stream=(alt_streams[2] if alt_streams is not None else None),
            )
        else:
            self.self_attn = KimiK3MLAAttention(
                config=config,
                layer_idx=layer_idx,
                quant_config=quant_config,
                prefix=f"{prefix}.self_attn",
                all_reduce_fusion=self.all_reduce_fusion,
                alt_stream=alt_streams[1] if alt_streams is not None else None,
                gate_alt_stream=alt_streams[2] if alt_streams is not None else None,
            )

        # the attention drops the fusion when its o_proj cannot write into
        # caller-owned storage; the layer's own AR call-site must agree
        self.all_reduce_fusion = self.self_attn.all_reduce_fusion

        # MLP / MoE
        if self._is_moe_layer:
            self.mlp = KimiK3MoE(
                config=config,
                quant_config=quant_config,
                layer_idx=layer_idx,
                prefix=f"{prefix}.mlp",
                alt_stream=alt_streams[0] if alt_streams is not None else None,
            )
        else:
            self.mlp = KimiK3MLP(
                hidden_size=config.hidden_size,
                intermediate_size=config.intermediate_size,
                hidden_act=config.hidden_act,
                quant_config=quant_config,
                prefix=f"{prefix}.mlp",
                activation_situ_beta=config.activation_situ_beta,
                activation_situ_linear_beta=config.activation_situ_linear_beta,
            )
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(
            config.hidden_size, eps=config.rms_norm_eps
        )

        # Attention Residual
        self.use_attn_residuals = config.attn_res_block_size is not None
        if self.use_attn_residuals:
            self.attn_res_block_size = config.attn_res_block_size
            self.is_block_write_layer = layer_idx % self.attn_res_block_size == 0
            self.prev_valid_blocks = _cdiv(layer_idx, self.attn_res_block_size)
            self.self_attention_res_norm = RMSNorm(
                config.hidden_size, eps=config.rms_norm_eps
            )
            self.mlp_res_norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            self.self_attention_res_proj = ReplicatedLinear(
                config.hidden_size,
                1,
                bias=False,
                quant_config=None,
                prefix=f"{prefix}.self_attention_res_proj",
            )
            self.mlp_res_proj = ReplicatedLinear(
                config.hidden_size,
                1,
                bias=False,
                quant_config=None,
                prefix=f"{prefix}.mlp_res_proj",
            )

        if self._sp_moe:
            # o_proj emits TP-partial sums; _finish_attn_reduce completes the
            # reduction (RS on the clean attn-res path, AR on fallbacks).
            o_proj = getattr(self.self_attn, "o_proj", None)
            assert o_proj is not None, "SP-MoE requires attention exposing o_proj"
            o_proj.reduce_results = False
            if k3_sp_collective.enabled():
                # The table selects NVLS pull RS for larger token buckets.
                # Only those o_proj outputs come from the persistent symmetric
                # buffer; small push RS keeps the regular graph allocator.
                _sp_inner_o_proj_forward = o_proj.forward

                def _sp_o_proj_forward(x, *args, **kwargs):
                    output_rows = k3_sp_collective.get_o_proj_output_rows(x.shape[0])
                    if k3_sp_collective.requires_symmetric_rs(output_rows, x.device):
                        output = k3_sp_collective.get_o_proj_output_buffer(
                            output_rows, x.dtype, o_proj.output_size
                        )
                        result = _sp_inner_o_proj_forward(
                            x, *args, output_tensor=output[: x.shape[0]], **kwargs
                        )
                        k3_sp_collective.register_o_proj_output(result[0], output)
                        return result
                    return _sp_inner_o_proj_forward(x, *args, **kwargs)

                o_proj.forward = _sp_o_proj_forward

    def _finish_attn_reduce(
        self,
        attn_out: torch.Tensor,
        allow_scatter: bool,
        residual: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, int, bool]:
        raise NotImplementedError("removed by slim: never run in any recording")

    def _run_self_attn(
        self,
        hidden_states: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        zero_allocator: BumpAllocator,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")


    def forward(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        forward_batch: ForwardBatch,
        residual: Optional[torch.Tensor],
        attn_res: Optional[AttnResidual],
        zero_allocator: BumpAllocator,
        input_sharded: bool = False,
        keep_sharded: bool = False,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        if attn_res is not None:
            return self._forward_attn_residual(
                positions,
                hidden_states,
                residual,
                attn_res,
                forward_batch,
                zero_allocator,
                input_sharded,
                keep_sharded,
            )

        assert not input_sharded
        # Standard residual path
        if residual is None:
            residual = hidden_states
            hidden_states = self.input_layernorm(hidden_states)
        else:
            hidden_states, residual = self.input_layernorm(hidden_states, residual)

        hidden_states = self._run_self_attn(
            hidden_states, positions, forward_batch, zero_allocator
        )
        # standard path returns a full-size residual to the next layer, so
        # complete the deferred o_proj reduction as a plain all-reduce
        hidden_states, _, _ = self._finish_attn_reduce(
            hidden_states, allow_scatter=False
        )

        hidden_states, residual = self.post_attention_layernorm(hidden_states, residual)
        hidden_states = self.mlp(hidden_states, forward_batch=forward_batch)
        return hidden_states, residual, False

    def _forward_attn_residual(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        prefix_sum: Optional[torch.Tensor],
        attn_res: AttnResidual,
        forward_batch: ForwardBatch,
        zero_allocator: BumpAllocator,
        input_sharded: bool,
        keep_sharded: bool,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        raise NotImplementedError("removed by slim: never run in any recording")


class KimiK3LinearModel(nn.Module):
    """K3 language-model backbone."""

    def __init__(
        self,
        config: KimiLinearConfig,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
    ):
        super().__init__()
        self.config = config
        self.pp_group = get_pp_group()
        self.dspark_layers_to_capture: Optional[list[int]] = None
        self._dp_attention = is_dp_attention_enabled()
        self._trim_padded_attn = require_mlp_sync(get_server_args())

        if self.pp_group.is_first_rank:
            self.embed_tokens = VocabParallelEmbedding(
                config.vocab_size,
                config.hidden_size,
                prefix=f"{prefix}.embed_tokens",
                # Under DP attention each rank embeds only its local tokens:
                # reduce within the attention-TP group, not the full TP group.
                **get_embedding_tp_kwargs(),
            )
        else:
            self.embed_tokens = PPMissingLayer()

        # Multi-stream pool (deepseek_v4 pattern): every alt stream is
        # constructed here and threaded down to the layers. Slots:
        #   [0] MoE dual-stream shared-expert tail
        #   [1] DeepseekV2AttentionMLA base internals (forwarded; unused by K3)
        #   [2] MLA output-gate GEMM, overlaps the attention core
        # (The attn-res bank write no longer needs a stream: it is fused
        # into the agg1 fast kernel, see AttnResidual.forward(write=True).)
        # Disable on HIP code path.
        self.alt_streams = [torch.cuda.Stream() for _ in range(3)]

        self.layers, self.start_layer, self.end_layer = make_layers(
            config.num_hidden_layers,
            lambda idx, prefix: KimiK3DecoderLayer(
                layer_idx=idx,
                config=config,
                quant_config=quant_config,
                prefix=prefix,
                alt_streams=self.alt_streams,
            ),
            pp_rank=self.pp_group.rank_in_group,
            pp_size=self.pp_group.world_size,
            prefix=f"{prefix}.layers",
        )

        if self.pp_group.is_last_rank:
            self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            if config.attn_res_block_size is not None:
                self.output_attn_res_norm = RMSNorm(
                    config.hidden_size, eps=config.rms_norm_eps
                )
                self.output_attn_res_proj = ReplicatedLinear(
                    config.hidden_size,
                    1,
                    bias=False,
                    quant_config=None,
                    prefix=f"{prefix}.output_attn_res_proj",
                )
        else:
            self.norm = PPMissingLayer()

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        inputs_embeds: torch.Tensor | None = None,
        pp_proxy_tensors: Optional[PPProxyTensors] = None,
    ) -> torch.Tensor:
        if get_pp_group().is_first_rank:
            if inputs_embeds is not None:
                hidden_states = inputs_embeds
            else:
                hidden_states = self.embed_tokens(input_ids)
            residual = None
        else:
            assert pp_proxy_tensors is not None
            hidden_states = pp_proxy_tensors["hidden_states"]
            residual = pp_proxy_tensors["residual"]
            if TYPE_CHECKING:
                assert isinstance(hidden_states, torch.Tensor)
                assert isinstance(residual, torch.Tensor | None)

        # mlp-sync (DP attention OR MoE a2a/EP) pads extend batches to a
        # multiple of attn_tp_size; attention layers run on the real rows
        # only (_run_self_attn trims), so the KV write locations must match
        # the trimmed length. positions and hidden_states keep the padded
        # length for the DP gather/scatter and the MoE.
        if (
            self._trim_padded_attn
            and forward_batch.forward_mode.is_extend()
            and forward_batch.out_cache_loc is not None
            and forward_batch.extend_seq_lens_cpu is not None
        ):
            num_real = int(sum(forward_batch.extend_seq_lens_cpu))
            if forward_batch.out_cache_loc.shape[0] > num_real:
                forward_batch.out_cache_loc = forward_batch.out_cache_loc[:num_real]

        total_num_layers = self.end_layer - self.start_layer
        device = hidden_states.device
        zero_allocator = BumpAllocator(
            buffer_size=total_num_layers * 2,
            dtype=torch.float32,
            device=device,
        )

        attn_res = None
        if self.config.attn_res_block_size is not None:
            attn_res_block_num = _cdiv(self.end_layer, self.config.attn_res_block_size)
            attn_res = AttnResidual(
                hidden_states,
                attn_res_block_num,
                block_residual=residual,
            )
            residual = None

        # Carry the raw residual stream as a token shard across consecutive
        # SP-MoE layers. PP transfer and dspark capture require full tensors,
        # so those uncommon paths keep the established gather-per-layer flow.
        sp_attn_res = (
            attn_res is not None
            and envs.SGLANG_K3_SP_ATTN_RES.get()
            and self.pp_group.world_size == 1
            and self.dspark_layers_to_capture is None
            and k3_sp_collective.enabled()
        )
        sp_sharded = False
        aux_hidden_states = []
        for i in range(self.start_layer, self.end_layer):
            if sp_sharded and not self.layers[i]._sp_moe:
                hidden_states = _sp_all_gather_rows(hidden_states)
                sp_sharded = False
            with get_global_expert_distribution_recorder().with_current_layer(i):
                hidden_states, residual, sp_sharded = self.layers[i](
                    positions=positions,
                    hidden_states=hidden_states,
                    forward_batch=forward_batch,
                    residual=residual,
                    attn_res=attn_res,
                    zero_allocator=zero_allocator,
                    input_sharded=sp_sharded,
                    keep_sharded=sp_attn_res,
                )
            if (
                self.dspark_layers_to_capture is not None
                and i in self.dspark_layers_to_capture
            ):
                aux_hidden_states.append(
                    self._dspark_capture_stream(i, hidden_states, residual, attn_res)
                )

        if not self.pp_group.is_last_rank:
            assert not sp_sharded
            if attn_res is not None:
                if residual is not None:
                    # Materialize the delayed MLP add: the wire carries the
                    # full stream head (bit-identical to the fused fold).
                    hidden_states = residual + hidden_states
                residual = attn_res.block_residual  # raw bank across ranks
            return PPProxyTensors(
                {"hidden_states": hidden_states, "residual": residual}
            )

        if hidden_states.shape[0] != 0:
            if attn_res is not None:
                # ---- Final aggregation (output side, folds delayed add) ----
                if sp_sharded:
                    output_rows = _sp_local_rows(hidden_states)
                    fused_output = attn_res.forward_sp_all_gather(
                        hidden_states,
                        residual,
                        self.output_attn_res_proj,
                        self.output_attn_res_norm,
                        self.norm,
                        rows=output_rows,
                    )
                    if fused_output is not None:
                        hidden_states, _ = fused_output
                    else:
                        hidden_states, _ = attn_res.forward(
                            hidden_states,
                            residual,
                            self.output_attn_res_proj,
                            self.output_attn_res_norm,
                            self.norm,
                            rows=output_rows,
                        )
                        hidden_states = _sp_all_gather_rows(hidden_states)
                else:
                    hidden_states, _ = attn_res.forward(
                        hidden_states,
                        residual,
                        self.output_attn_res_proj,
                        self.output_attn_res_norm,
                        self.norm,
                    )
            else:
                if residual is None:
                    hidden_states = self.norm(hidden_states)
                else:
                    hidden_states, _ = self.norm(hidden_states, residual)

        if self.dspark_layers_to_capture is not None:
            return hidden_states, aux_hidden_states
        return hidden_states

    def _dspark_capture_stream(
        self,
        layer_idx: int,
        hidden_states: torch.Tensor,
        residual: Optional[torch.Tensor],
        attn_res: Optional[AttnResidual],
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")


class KimiK3LinearForCausalLM(nn.Module):
    """Text-only K3 causal LM."""

    def __init__(
        self,
        config: KimiLinearConfig,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.config = config
        self.quant_config = quant_config
        self.model = KimiK3LinearModel(
            config, quant_config, prefix=maybe_prefix(prefix, "model")
        )
        self.pp_group = get_pp_group()
        if self.pp_group.is_last_rank:
            self.lm_head = ParallelLMHead(
                config.vocab_size,
                config.hidden_size,
                quant_config=quant_config,
                prefix=maybe_prefix(prefix, "lm_head"),
                use_attn_tp_group=get_parallel().enable_dp_lm_head,
            )
        else:
            self.lm_head = PPMissingLayer()
        logit_scale = getattr(config, "logit_scale", 1.0)
        self.logits_processor = LogitsProcessor(config=config, logit_scale=logit_scale)
        self.capture_aux_hidden_states = False

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_dspark_layers_to_capture(self, layer_ids: list[int]) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    @torch.no_grad()
    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        input_embeds: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        pp_proxy_tensors: Optional[PPProxyTensors] = None,
    ) -> torch.Tensor:
        embeds = input_embeds if input_embeds is not None else inputs_embeds
        hidden_states = self.model(
            input_ids, positions, forward_batch, embeds, pp_proxy_tensors
        )
        if self.pp_group.is_last_rank:
            aux_hidden_states = None
            if self.capture_aux_hidden_states:
                hidden_states, aux_hidden_states = hidden_states
            return self.logits_processor(
                input_ids,
                hidden_states,
                self.lm_head,
                forward_batch,
                aux_hidden_states,
            )
        return hidden_states

    def prepare_context_parallel_metadata_for_dcp(
        self,
        seq_lens: torch.Tensor,
        extend_prefix_lens: torch.Tensor,
        extend_prefix_lens_cpu: torch.Tensor,
        extend_seq_lens: torch.Tensor,
        req_pool_indices: torch.Tensor,
        req_to_token: torch.Tensor,
        seq_lens_sum: int,
        kv_buffer_shape: torch.Size,
        kv_cache_dtype,
        kv_cache_device,
        create_chunked_prefix_cache_kv_indices_fn,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]):
        raise NotImplementedError("removed by slim: never run in any recording")

    def post_load_weights(self):
        raise NotImplementedError("removed by slim: never run in any recording")


class KimiK3ForConditionalGeneration(nn.Module):
    """K3 multimodal wrapper: MoonViT3d tower + KimiK3LinearForCausalLM."""

    # Raw HF checkpoint prefixes, before hf_to_sglang_mapper is applied.
    encoder_only_safetensors_weight_prefixes = (
        "vision_tower.",
        "mm_projector.",
    )

    hf_to_sglang_mapper = WeightsMapper(
        orig_to_new_prefix={
            "language_model.layers.": "language_model.model.layers.",
        },
        orig_to_new_substr={
            "block_sparse_moe": "mlp",
        },
    )

    def __init__(
        self,
        config: KimiK3Config,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
        **kwargs,
    ) -> None:
        super().__init__()
        self.config = config
        self.quant_config = quant_config

        # The dedicated K3 tower runs replicated (per-rank full weights);
        # shard work across ranks image-wise via the DP runner.
        self.use_data_parallel = True

        self.vision_tower = KimiK3VisionTower(config.vision_config)
        self.mm_projector = KimiK3MultiModalProjector(config.vision_config)

        self.language_model = None
        if not config.encoder_only:
            self.language_model = KimiK3LinearForCausalLM(
                config.text_config,
                quant_config,
                prefix="",
            )

    @property
    def model(self):
        return self.language_model

    def __setattr__(self, name, value):
        if name == "model":
            return
        super().__setattr__(name, value)

    def post_load_weights(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def precompile_kernels_after_loading(self) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_input_embeddings(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    @property
    def lm_head(self):
        if self.language_model is None:
            raise AttributeError("lm_head is not available in encoder-only mode")
        return self.language_model.lm_head

    def set_dspark_layers_to_capture(self, layer_ids: list[int]) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_image_feature(self, items: List[MultimodalDataItem]) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    def pad_input_ids(self, input_ids: List[int], mm_inputs: MultimodalInputs):
        pattern = MultiModalityDataPaddingPatternMultimodalTokens()
        return pattern.pad_input_tokens(input_ids, mm_inputs)

    @property
    def start_layer(self) -> int:
        if self.language_model is None:
            return 0
        return self.language_model.model.start_layer

    @property
    def end_layer(self) -> int:
        if self.language_model is None:
            return self.config.text_config.num_hidden_layers
        return self.language_model.model.end_layer

    def prepare_context_parallel_metadata_for_dcp(
        self,
        seq_lens: torch.Tensor,
        extend_prefix_lens: torch.Tensor,
        extend_prefix_lens_cpu: torch.Tensor,
        extend_seq_lens: torch.Tensor,
        req_pool_indices: torch.Tensor,
        req_to_token: torch.Tensor,
        seq_lens_sum: int,
        kv_buffer_shape: torch.Size,
        kv_cache_dtype,
        kv_cache_device,
        create_chunked_prefix_cache_kv_indices_fn,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        get_embedding: bool = False,
        pp_proxy_tensors: Optional[PPProxyTensors] = None,
    ):
        hidden_states = general_mm_embed_routine(
            input_ids=input_ids,
            forward_batch=forward_batch,
            language_model=self.language_model,
            data_embedding_funcs={
                Modality.IMAGE: self.get_image_feature,
            },
            positions=positions,
            pp_proxy_tensors=pp_proxy_tensors,
        )
        return hidden_states

    def load_weights(self, weights: Iterable[Tuple[str, torch.Tensor]]):
        raise NotImplementedError("removed by slim: never run in any recording")


EntryClass = [KimiK3ForConditionalGeneration]
