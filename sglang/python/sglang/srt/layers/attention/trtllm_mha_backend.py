from __future__ import annotations

"""
Support attention backend for TRTLLM MHA kernels from flashinfer.
The kernel supports sm100 only, with sliding window and attention sink features.
"""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch

from sglang.kernels.ops.kvcache.trtllm_mha_graph_metadata import (
    Q_MODE_NONE,
    Q_MODE_STRIDED,
    update_trtllm_mha_graph_metadata,
)
from sglang.kernels.ops.kvcache.trtllm_mha_page_table import (
    build_trtllm_mha_page_table,
)
from sglang.srt.environ import envs
from sglang.srt.layers.attention.flashinfer_backend import (
    FlashInferAttnBackend,
    FlashInferMultiStepDraftBackend,
)
from sglang.srt.layers.quantization.fp4_kv_cache_quant_method import (
    KVCacheAttentionAccessKind,
)
from sglang.srt.layers.radix_attention import AttentionType
from sglang.srt.mem_cache.swa_memory_pool import SWAKVPool
from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode
from sglang.srt.runtime_context import get_buffer, get_spec
from sglang.srt.utils import is_flashinfer_available
from sglang.srt.utils.common import is_sm90_supported, is_sm120_supported

logger = logging.getLogger(__name__)

if is_flashinfer_available():
    import flashinfer

if TYPE_CHECKING:
    from sglang.srt.layers.radix_attention import RadixAttention
    from sglang.srt.model_executor.model_runner import ModelRunner
    from sglang.srt.speculative.spec_info import SpecInput

# Constants
# Default workspace size in MB for TRTLLM MHA
# Can be configured via SGLANG_FLASHINFER_WORKSPACE_SIZE environment variable
DEFAULT_WORKSPACE_SIZE_MB = 512

# Reuse this workspace buffer across all TRTLLM MHA wrappers


@dataclass
class TRTLLMMHAMetadata:
    # Sequence lengths for the forward batch
    cache_seqlens_int32: torch.Tensor = None
    # Maximum sequence length for query
    max_seq_len_q: int = 1
    # Cumulative sequence lengths for `query
    cu_seqlens_q: torch.Tensor = None
    # Cumulative sequence lengths for key
    cu_seqlens_k: torch.Tensor = None
    # Page table, the index of KV Cache Tables/Blocks
    page_table: torch.Tensor = None
    # Page table for SWA layers (translated from full pool indices to SWA pool indices)
    swa_page_table: torch.Tensor = None
    # CP-v2 zigzag treats prev/next halves as a synthetic 2 * batch_size batch.
    zigzag_page_table: torch.Tensor = None
    zigzag_swa_page_table: torch.Tensor = None
    # full->SWA translated out_cache_loc (SWA KV-store write target)
    swa_out_cache_loc: torch.Tensor = None
    is_ragged_verify: bool = False
    # ENCODER_ONLY target-verify (bidirectional attention over the window):
    # bs*L single-token decode rows whose kv length spans the whole window,
    # so each token attends the full window despite the causal decode kernel.
    encoder_cache_seqlens: torch.Tensor = None
    encoder_page_table: torch.Tensor = None
    encoder_row_map: torch.Tensor = None


class TRTLLMHAAttnBackend(FlashInferAttnBackend):
    """TRTLLM MHA attention kernel from flashinfer."""

    # Build the page table on-device from seq_lens (incl. the SWA-translated table
    # via the full->SWA lookup; see _fill_page_table_device), so we never need the
    # seq_lens_cpu D2H sync; opt out of it, matching trtllm_mla / triton.
    needs_cpu_seq_lens: bool = False

    supports_ragged_verify_graph: bool = True

    def __init__(
        self,
        model_runner: ModelRunner,
        skip_prefill: bool = False,
        kv_indptr_buf: Optional[torch.Tensor] = None,
        kv_last_page_len_buf: Optional[torch.Tensor] = None,
        speculative_step_id: int = 0,
    ):
        # Capture workspace size before super().__init__() to preserve user's
        # SGLANG_FLASHINFER_WORKSPACE_SIZE setting (may be overridden by parent)
        env_var = envs.SGLANG_FLASHINFER_WORKSPACE_SIZE
        workspace_size_bytes = (
            env_var.get()
            if env_var.is_set()
            else DEFAULT_WORKSPACE_SIZE_MB * 1024 * 1024
        )

        super().__init__(
            model_runner, skip_prefill, kv_indptr_buf, kv_last_page_len_buf
        )
        self.decode_kv_access = self.kv_cache_quant_method.resolve_attention_access(
            "decode", "trtllm_mha"
        )
        self._check_decode_kv_access()
        self.decode_uses_native_fp4 = (
            self.decode_kv_access.kind == KVCacheAttentionAccessKind.NATIVE_FP4
        )
        self.is_nvfp4_kvcache = (
            self.decode_uses_native_fp4
            and self.decode_kv_access.scale_recipe == "nvfp4"
        )

        config = model_runner.model_config

        # MHA-specific dimensions
        self.max_context_len = model_runner.model_config.context_len
        self.hidden_size = config.hidden_size

        # Runtime parameters
        self.data_type = model_runner.kv_cache_dtype
        self.q_data_type = model_runner.dtype
        self.page_size = model_runner.page_size
        self.req_to_token = model_runner.req_to_token_pool.req_to_token
        self.device = model_runner.device

        # Workspace allocation
        self.workspace_size = workspace_size_bytes
        # Allocate buffers
        self.workspace_buffer = get_buffer(
            "trtllm_mha_zero_workspace",
            lambda: torch.zeros(
                self.workspace_size,
                dtype=torch.uint8,
                device=model_runner.device,
            ),
        )

        # CUDA graph state
        self.decode_cuda_graph_metadata = {}

        # Speculative decoding
        # Only support topk <= 1 for now.
        self.topk = model_runner.server_args.speculative_eagle_topk or 0
        self.speculative_step_id = speculative_step_id
        self.target_verify_metadata = {}

        self.speculative_num_draft_tokens = get_spec().speculative_num_draft_tokens
        # True iff the model declares ENCODER_ONLY (bidirectional) layers, which
        # need the expanded TARGET_VERIFY metadata (TRTLLMMHAMetadata.encoder_*).
        self.expand_encoder_only_verify = any(
            getattr(module, "attn_type", None) == AttentionType.ENCODER_ONLY
            for module in model_runner.model.modules()
        )

        # SWA hybrid models split the KV cache into full and SWA pools with
        # separate index spaces; SWA layers need a translated page_table.
        self._swa_kv_pool: Optional[SWAKVPool] = self._resolve_swa_kv_pool(model_runner)
        # Raw full->swa index mapping tensor for the fused cuda-graph
        # metadata kernel (gather + // page_size happen on device).
        if self._swa_kv_pool is not None:
            self._swa_full_to_swa_mapping = self._swa_kv_pool.full_to_swa_index_mapping
            assert self._swa_full_to_swa_mapping is not None, (
                "SWA pool must register full_to_swa_index_mapping before "
                "TRTLLMHAAttnBackend is constructed"
            )
        else:
            self._swa_full_to_swa_mapping = None

        # Static page-table width (upper bound). The CUDA-graph path builds the
        # page table on-device sized to this constant, so it never reads a runtime
        # max. See _fill_page_table_device.
        self.max_num_pages = (
            self.max_context_len + self.page_size - 1
        ) // self.page_size

        # Forward metadata
        self.forward_metadata: Optional[TRTLLMMHAMetadata] = None

        # Init backend (XQA or TRTLLM-GEN)
        # We need to specify q_type and out_type for different backend
        # XQA: (q_type must be bf16)
        #   KV bf16: q_type = bf16, out_type=model_runner.dtype
        #   KV fp8: q_type = bf16, out_type=model_runner.dtype
        # TRTLLM-GEN:
        #   KV bf16: q_type = bf16, out_type=model_runner.dtype
        #   KV fp8: q_type = fp8, out_type=model_runner.dtype
        self.is_xqa_impl = is_sm90_supported() or is_sm120_supported()

        # trtllm-gen serves page_size >= 128 only through its dynamic
        # tokens-per-page kernels, which exist solely for GQA with equal QK/V
        # head dims (power-of-2 pages). Mirror that precondition here so an
        # unsupported combo fails at construction instead of as a
        # "Missing TRTLLM-GEN kernel" error during CUDA-graph capture.
        # XQA (SM90/SM120 decode) has native page-128 kernels; no check needed.
        if self.page_size >= 128 and not self.is_xqa_impl:
            from sglang.srt.runtime_context import get_parallel

            attn_tp_size = get_parallel().attn_tp_size
            num_q_heads = config.num_attention_heads // attn_tp_size
            num_kv_heads = config.get_num_kv_heads(attn_tp_size)
            if (
                num_q_heads // num_kv_heads <= 1
                or config.head_dim != config.v_head_dim
                or self.page_size & (self.page_size - 1) != 0
            ):
                raise ValueError(
                    f"trtllm_mha with page_size={self.page_size} requires "
                    f"trtllm-gen's dynamic tokens-per-page kernels, which only "
                    f"support GQA (q heads per kv head > 1, got "
                    f"{num_q_heads}/{num_kv_heads}) with equal QK/V head dims "
                    f"(got {config.head_dim}/{config.v_head_dim}) and a "
                    f"power-of-2 page size. Use --page-size 64 instead."
                )

    @staticmethod
    def _resolve_swa_kv_pool(model_runner: ModelRunner) -> Optional[SWAKVPool]:
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend._resolve_swa_kv_pool: it never ran in any recording (see sglang/REMOVED.md)')

    def init_cuda_graph_state(
        self,
        max_bs: int,
        max_num_tokens: int,
        kv_indices_buf: Optional[torch.Tensor] = None,
    ):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.init_cuda_graph_state: it never ran in any recording (see sglang/REMOVED.md)')

    def _apply_cuda_graph_metadata(
        self,
        bs: int,
        req_pool_indices: torch.Tensor,
        seq_lens: torch.Tensor,
        forward_mode: ForwardMode,
        spec_info: Optional[SpecInput],
        out_cache_loc: Optional[torch.Tensor] = None,
    ):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend._apply_cuda_graph_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    def update_verify_buffers_to_fill_after_draft(
        self, spec_info: SpecInput, cuda_graph_bs: Optional[int]
    ):
        pass

    def get_cuda_graph_seq_len_fill_value(self) -> int:
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.get_cuda_graph_seq_len_fill_value: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata_out_graph(
        self,
        forward_batch: ForwardBatch,
        in_capture: bool = False,
    ):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.init_forward_metadata_out_graph: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata_in_graph(self, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.init_forward_metadata_in_graph: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.init_forward_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    def forward_decode(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        layer: RadixAttention,
        forward_batch: ForwardBatch,
        save_kv_cache: bool = True,
        **kwargs,
    ) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.forward_decode: it never ran in any recording (see sglang/REMOVED.md)')

    def forward_extend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        layer: RadixAttention,
        forward_batch: ForwardBatch,
        save_kv_cache=True,
        **kwargs,
    ):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnBackend.forward_extend: it never ran in any recording (see sglang/REMOVED.md)')


class TRTLLMHAAttnMultiStepDraftBackend(FlashInferMultiStepDraftBackend):
    """Multi-step TRTLLM MHA attention kernel used by EAGLE."""

    # Per-step backends build the page table on-device (sync-free); mirror that so
    # decide_needs_cpu_seq_lens sees a consistent target + draft value.
    needs_cpu_seq_lens: bool = False

    def __init__(
        self, model_runner: ModelRunner, topk: int, speculative_num_steps: int
    ):
        super().__init__(model_runner, topk, speculative_num_steps)
        for i in range(self.speculative_num_steps - 1):
            self.attn_backends[i] = TRTLLMHAAttnBackend(
                model_runner,
                skip_prefill=True,
                kv_indptr_buf=self.kv_indptr[i],
                kv_last_page_len_buf=self.kv_last_page_len,
                speculative_step_id=i,
            )

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnMultiStepDraftBackend.init_forward_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnMultiStepDraftBackend.init_cuda_graph_state: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata_out_graph(
        self,
        forward_batch: ForwardBatch,
        in_capture: bool = False,
    ):
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnMultiStepDraftBackend.init_forward_metadata_out_graph: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata_in_graph(self, forward_batch: ForwardBatch) -> None:
        raise NotImplementedError('slim removed the body of TRTLLMHAAttnMultiStepDraftBackend.init_forward_metadata_in_graph: it never ran in any recording (see sglang/REMOVED.md)')
