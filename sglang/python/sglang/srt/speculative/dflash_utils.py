from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, List, Optional


from sglang.srt.managers.schedule_batch import Req
from sglang.srt.utils import is_cuda, is_musa

DEFAULT_DFLASH_MASK_TOKEN = "<|MASK|>"

logger = logging.getLogger(__name__)

_DFLASH_SAMPLING_VERIFY_AVAILABLE = False
_DFLASH_CHAIN_VERIFY_BUFFERS: dict[tuple[Optional[int], int], dict[str, Any]] = {}
_DFLASH_VERIFY_SKIP_CUSTOM_MASK_BACKENDS = frozenset(
    {
        "FlashInferAttnBackend",
        "FlashInferMLAAttnBackend",
        "FlashAttentionBackend",
        "TritonAttnBackend",
        "TRTLLMHAAttnBackend",
        "TRTLLMMLABackend",
    }
)


if is_cuda():
    try:
        from sgl_kernel import (
            top_k_renorm_prob,
            top_p_renorm_prob,
            tree_speculative_sampling_target_only,
        )

        _DFLASH_SAMPLING_VERIFY_AVAILABLE = True
    except Exception:
        top_k_renorm_prob = None
        top_p_renorm_prob = None
        tree_speculative_sampling_target_only = None
else:
    top_k_renorm_prob = None
    top_p_renorm_prob = None
    tree_speculative_sampling_target_only = None


def scale_kv_cell_size_per_token_for_dflash(
    *,
    target_cell_size_per_token: int,
    target_num_layers: int,
    draft_num_layers: int,
    draft_cell_size_per_token: Optional[int] = None,
) -> int:
    raise NotImplementedError('slim removed the body of scale_kv_cell_size_per_token_for_dflash: it never ran in any recording (see sglang/REMOVED.md)')


def resolve_dflash_verify_mask_policy(attn_backend: Any) -> tuple[str, bool]:
    raise NotImplementedError('slim removed the body of resolve_dflash_verify_mask_policy: it never ran in any recording (see sglang/REMOVED.md)')


@dataclass(frozen=True)
class DFlashDraftConfig:
    num_hidden_layers: Optional[int]
    num_target_layers: Optional[int]
    block_size: Optional[int]
    target_layer_ids: Optional[List[int]]
    mask_token: str
    mask_token_id: Optional[int]

    def require_num_layers(self) -> int:
        raise NotImplementedError('slim removed the body of DFlashDraftConfig.require_num_layers: it never ran in any recording (see sglang/REMOVED.md)')

    def resolve_target_layer_ids(
        self,
        *,
        target_num_layers: int,
        draft_num_layers: Optional[int] = None,
    ) -> List[int]:
        raise NotImplementedError('slim removed the body of DFlashDraftConfig.resolve_target_layer_ids: it never ran in any recording (see sglang/REMOVED.md)')


def parse_dflash_draft_config(*, draft_hf_config: Any) -> DFlashDraftConfig:
    raise NotImplementedError('slim removed the body of parse_dflash_draft_config: it never ran in any recording (see sglang/REMOVED.md)')


def validate_dflash_request(req: Req, enable_overlap: bool) -> Optional[str]:
    raise NotImplementedError('slim removed the body of validate_dflash_request: it never ran in any recording (see sglang/REMOVED.md)')
