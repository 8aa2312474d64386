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

# Integrates "S-LoRA: Serving Thousands of Concurrent LoRA Adapters"
# and "Punica: Multi-Tenant LoRA Serving"

import logging
from typing import Iterable, List, Optional

import torch

from sglang.srt.configs.load_config import LoadConfig
from sglang.srt.environ import envs
from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE
from sglang.srt.layers.utils import get_layer_id
from sglang.srt.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
)
from sglang.srt.lora.backend.base_backend import BaseLoRABackend
from sglang.srt.lora.backend.lora_registry import get_backend_from_name
from sglang.srt.lora.layers import BaseLayerWithLoRA, FusedMoEWithLoRA
from sglang.srt.lora.lora_registry import LoRARef
from sglang.srt.lora.utils import (
    DSA_INDEXER_LORA_NAMES,
    EMBEDDING_NAMES,
    )
from sglang.srt.managers.io_struct import LoRAUpdateOutput
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.runtime_context import get_parallel
from sglang.srt.server_args import ServerArgs
from sglang.srt.utils import get_available_gpu_memory
from sglang.srt.utils.hf_transformers_utils import AutoConfig

_SGLANG_EXPERIMENTAL_LORA_OPTI = envs.SGLANG_EXPERIMENTAL_LORA_OPTI.get()

logger = logging.getLogger(__name__)


class LoRAManager:
    def __init__(
        self,
        base_model: torch.nn.Module,
        base_hf_config: AutoConfig,
        max_loras_per_batch: int,
        load_config: LoadConfig,
        dtype: torch.dtype,
        server_args: ServerArgs,
        lora_backend: str = "triton",
        tp_size: int = 1,
        tp_rank: int = 0,
        max_lora_rank: Optional[int] = None,
        target_modules: Optional[Iterable[str]] = None,
        lora_paths: Optional[List[LoRARef]] = None,
    ):
        self.base_model: torch.nn.Module = base_model
        if hasattr(base_hf_config, "get_text_config"):
            self.base_hf_config: AutoConfig = base_hf_config.get_text_config()
        else:
            self.base_hf_config: AutoConfig = base_hf_config
        self.max_loras_per_batch: int = max_loras_per_batch
        self.load_config: LoadConfig = load_config
        self.dtype: torch.dtype = dtype
        self.device: torch.device = next(self.base_model.parameters()).device
        self.tp_size: int = tp_size
        self.tp_rank: int = tp_rank
        # Attention projections shard on the attn-TP group; extracted once
        # here (parallel groups are frozen after init_torch_distributed).
        self.attn_tp_size: int = get_parallel().attn_tp_size
        self.lora_added_tokens_size: Optional[int] = None
        self.enable_lora_overlap_loading: Optional[bool] = (
            server_args.enable_lora_overlap_loading
        )
        self.pending_lora_load_events = {}

        self.eviction_policy = server_args.lora_eviction_policy
        self.enable_dp_attention: bool = server_args.enable_dp_attention
        self._experts_shared_outer_override: Optional[bool] = (
            server_args.experts_shared_outer_loras
        )
        self.lora_use_virtual_experts: bool = server_args.lora_use_virtual_experts
        self.lora_strict_loading: bool = getattr(
            server_args, "lora_strict_loading", False
        )

        # LoRA backend for running sgemm kernels
        logger.info(f"Using {lora_backend} as backend of LoRA kernels.")
        backend_type = get_backend_from_name(lora_backend)
        self.lora_backend: BaseLoRABackend = backend_type(
            max_loras_per_batch=max_loras_per_batch,
            device=self.device,
            server_args=server_args,
        )

        # Initialize mutable internal state of the LoRAManager.
        self.init_state(
            max_lora_rank=max_lora_rank,
            target_modules=target_modules,
            lora_paths=lora_paths,
        )

        # ===== END TO BE REFACTORED ====


    @property
    def supports_prefill_cuda_graph(self) -> bool:
        """Whether LoRA kernels can be captured into the prefill CUDA graph;
        excludes MoE LoRA and DP attention."""
        return (
            self.lora_backend.supports_prefill_cuda_graph
            and not self.lora_backend.is_moe_lora
            and not self.enable_dp_attention
        )

    @property
    def prefill_cuda_graph_max_bs(self) -> Optional[int]:
        """Request-count cap for prefill-graph LoRA batches; None until
        init_prefill_cuda_graph_batch_info() ran."""
        return self.lora_backend.prefill_cuda_graph_max_bs



























def init_lora_cuda_graph_moe_buffers(
    *,
    server_args: ServerArgs,
    model: torch.nn.Module,
    lora_manager: LoRAManager,
    dtype: torch.dtype,
):
    """Phase 1 of LoRA CUDA graph init: pre-allocate MoE intermediate buffers.

    Must be called before init_memory_pool() so that memory profiling
    sees the reduced available memory and sizes KV cache correctly.
    All MoE LoRA layers share one set of buffers (managed by the
    lora_backend) since they execute sequentially during forward.

    Phase 2 (dense LoRA batch metadata) is handled later in
    CudaGraphRunner.__init__() via lora_manager.init_cuda_graph_batch_info(),
    because it needs capture-time parameters (max_bs, num_tokens_per_req)
    that are only available at that stage.
    """
    from sglang.srt.lora.layers import FusedMoEWithLoRA

    max_bs = server_args.cuda_graph_config.decode.max_bs
    max_loras = server_args.max_loras_per_batch
    for module in model.modules():
        if isinstance(module, FusedMoEWithLoRA):
            lora_manager.init_cuda_graph_moe_buffers(max_bs, max_loras, dtype, module)
            logger.info(
                f"Pre-allocated shared MoE LoRA CUDA graph buffers "
                f"(max_bs={max_bs}, max_loras={max_loras})"
            )
            break
