import logging
from typing import (
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    Union,
    overload,
)

import torch

from sglang.srt.distributed import (
    divide,
    get_pp_group,
)
from sglang.srt.environ import envs
from sglang.srt.lora.eviction_policy import get_eviction_policy
from sglang.srt.lora.layers import BaseLayerWithLoRA
from sglang.srt.lora.lora import LoRAAdapter
from sglang.srt.lora.lora_config import LoRAConfig
from sglang.srt.lora.lora_registry import LoRARef
from sglang.srt.lora.utils import (
    ATTN_TP_LORA_MODULE_NAMES,
    EMBEDDING_NAMES,
    REPLICATED_LINEAR_LORA_NAMES,
    ROW_PARALLELISM_LINEAR_LORA_NAMES,
    LoRAType,
    copy_weight_into_buffer,
    get_hidden_dim,
    get_lm_head_lora_b_shard_size,
    get_normalized_target_modules,
    get_stacked_multiply,
    get_target_module_name,
)
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import is_pin_memory_available
from sglang.srt.utils.hf_transformers_utils import AutoConfig

_SGLANG_EXPERIMENTAL_LORA_OPTI = envs.SGLANG_EXPERIMENTAL_LORA_OPTI.get()

logger = logging.getLogger(__name__)


class EmptySlot:
    """
    Singleton class to represent an empty slot in the memory pool.
    This is used to improve readability by not using special str as a placeholder.
    """

    __slots__ = ()

    def __repr__(self):
        return "|EMPTY|"

    def __new__(cls):
        if not hasattr(cls, "_instance"):
            cls._instance = super().__new__(cls)
        return cls._instance


EMPTY_SLOT = EmptySlot()


@overload
def append_cache_key_suffix(cache_keys: str, suffix: str) -> str: ...


@overload
def append_cache_key_suffix(
    cache_keys: Dict[int, str], suffix: str
) -> Dict[int, str]: ...


def append_cache_key_suffix(
    cache_keys: Union[str, Dict[int, str]],
    suffix: str,
) -> Union[str, Dict[int, str]]:
    raise NotImplementedError("removed by slim: never run in any recording")


def _get_moe_ep_context() -> Tuple[int, int]:
    raise NotImplementedError("removed by slim: never run in any recording")


def _get_moe_tp_context() -> Tuple[int, int]:
    raise NotImplementedError("removed by slim: never run in any recording")


def _moe_runner_keeps_global_expert_ids() -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


class LoRAMemoryPool:
    """Class for memory pool management of lora modules"""

    def __init__(
        self,
        base_hf_config: AutoConfig,
        max_loras_per_batch: int,
        dtype: torch.dtype,
        tp_size: int,
        tp_rank: int,
        attn_tp_size: int,
        max_lora_rank: int,
        target_modules: Set[str],
        base_model: torch.nn.Module,
        eviction_policy: str,
        lora_added_tokens_size: int,
        experts_shared_outer_loras: bool = False,
        strict_loading: bool = False,
        enable_lora_overlap_loading: bool = False,
    ):
        self.base_hf_config: AutoConfig = base_hf_config
        self.num_layer: int = base_hf_config.num_hidden_layers
        self.max_loras_per_batch: int = max_loras_per_batch
        self.dtype: torch.dtype = dtype
        self.tp_size: int = tp_size
        self.tp_rank: int = tp_rank
        self.lora_added_tokens_size: int = lora_added_tokens_size
        self.max_lora_rank: int = max_lora_rank
        self.target_modules: Set[str] = target_modules
        self.experts_shared_outer_loras: bool = experts_shared_outer_loras
        self.strict_loading: bool = strict_loading
        self.enable_lora_overlap_loading: bool = enable_lora_overlap_loading
        self.pin_memory_available: bool = is_pin_memory_available()

        # Under EP with a Triton/DeepGEMM runner, `StandardDispatcher` remaps
        # global `topk_ids` -> local expert IDs before the MoE kernel, so
        # per-expert LoRA buffers must be sized and keyed by the local slice.
        # FlashInfer CUTLASS/CuteDSL/TRTLLM/MXFP4 keep global IDs, and an
        # uneven expert split (`num_experts % moe_ep_size != 0`, shouldn't
        # happen in practice) is also treated as globally-keyed so we don't
        # silently truncate experts.
        self.moe_ep_size, self.moe_ep_rank = _get_moe_ep_context()
        num_experts_global = self._get_num_experts(base_model)
        self.moe_use_local_expert_ids = (
            self.moe_ep_size > 1
            and not _moe_runner_keeps_global_expert_ids()
            and num_experts_global % self.moe_ep_size == 0
        )

        # Per-expert MoE weights are sharded by `moe_tp_size`, NOT the outer
        # `tp_size`: `moe_tp_size = tp_size // ep_size // dp_size`, so under
        # e.g. `--tp 4 --ep 4` each rank holds full-width expert weights
        # (`moe_tp_size == 1`). Sizing per-expert LoRA buffers by `tp_size`
        # here would yield a 4x-narrower inner dim than the adapter weight
        # (which MoE LoRA modules correctly skip-slice when
        # `moe_tp_size <= 1`), producing a shape-mismatch
        # assert during weight load.
        self.moe_tp_size, self.moe_tp_rank = _get_moe_tp_context()

        # Attention projections shard along the attention TP group, which
        # under `--enable-dp-attention` is `attn_tp_size = tp_size // dp_size`.
        # The corresponding LoRA wrappers slice weights by the base layer's
        # attn_tp-local rank, so the buffer shapes must match that shard.
        self.attn_tp_size: int = attn_tp_size

        # Initialize eviction policy
        self.eviction_policy = get_eviction_policy(eviction_policy)

        # Both A_buffer and B_buffer maps lora weight names to its buffer space.
        # Standard LoRA (3D): [num_loras, rank, hidden_dim]
        # MoE LoRA (4D): [num_loras, num_experts, rank, hidden_dim]
        # The dimensionality is determined by the module type (MoE vs standard)
        self.A_buffer: Dict[str, List[torch.Tensor]] = {}
        self.B_buffer: Dict[str, List[torch.Tensor]] = {}

        self.embedding_A_buffer: Dict[str, torch.Tensor] = {}
        self.embedding_B_buffer: Dict[str, torch.Tensor] = {}

        self.lm_head_A_buffer: Dict[str, torch.Tensor] = {}
        self.lm_head_B_buffer: Dict[str, torch.Tensor] = {}
        self.new_embeddings_buffer: Dict[str, torch.Tensor] = {}

        self.embedding_dim: int = self.base_hf_config.hidden_size

        # Lora uid -> buffer idx in memory pool
        self.uid_to_buffer_id: Dict[Optional[str], int] = {}

        # Buffer idx -> lora uid in memory pool
        # All uids are initialized as `EmptySlot` for empty buffer slots
        # Here we don't initialize to None since None is a valid uid
        self.buffer_id_to_uid: List[Union[str, None, EmptySlot]] = [
            EMPTY_SLOT
        ] * self.max_loras_per_batch

        # Cache lm_head shard_indices from the base model so that buffer
        # allocation uses the same sharding as the base ParallelLMHead layer.
        self.lm_head_shard_indices = None
        if "lm_head" in target_modules and tp_size > 1:
            from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead

            for _, module in base_model.named_modules():
                if isinstance(module, ParallelLMHead):
                    self.lm_head_shard_indices = module.shard_indices
                    break

        self.init_buffers(base_model)





    @staticmethod
    def _get_num_experts(base_model: torch.nn.Module) -> int:
        raise NotImplementedError("removed by slim: never run in any recording")













    def init_buffers(self, base_model: torch.nn.Module):
        raise NotImplementedError("removed by slim: never run in any recording")


    def prepare_lora_batch(
        self,
        cur_uids: Set[Optional[str]],
        lora_adapters: Dict[str, LoRAAdapter],
        lora_modules: List[Dict[str, torch.nn.Module]],
        lora_refs: Dict[str, LoRARef],
        lora_embed_tokens_module: Optional[BaseLayerWithLoRA],
        lora_lm_head_module: Optional[BaseLayerWithLoRA],
    ):
        raise NotImplementedError("removed by slim: never run in any recording")





    def get_tensor(
        self, target_module: str, layer_id: int, lora_type: LoRAType
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

