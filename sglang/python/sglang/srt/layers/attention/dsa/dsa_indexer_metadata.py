from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from sglang.srt.layers.attention.dsa.dsa_topk_backend import (
    DSATopKBackend,
    TopkTransformMethod,
)

if TYPE_CHECKING:
    from sglang.srt.layers.attention.dsa_backend import DSAMetadata


class BaseIndexerMetadata(ABC):
    @abstractmethod
    def get_seqlens_int32(self) -> torch.Tensor:
        """
        Return: (batch_size,) int32 tensor
        """

    @abstractmethod
    def get_page_table_64(self) -> torch.Tensor:
        """
        Return: (batch_size, num_blocks) int32, page table.
                The page size of the table is 64.
        """

    @abstractmethod
    def get_page_table_1(self) -> torch.Tensor:
        """
        Return: (batch_size, num_blocks) int32, page table.
                The page size of the table is 1.
        """

    @abstractmethod
    def get_seqlens_expanded(self) -> torch.Tensor:
        """
        Return: (sum_extend_seq_len,) int32 tensor
        """

    def get_indexer_kvcache_range(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Return: (tokens, ), (tokens, ) int32, k_start and k_end in kv cache(token,xxx) for each token.
        """

    def get_indexer_seq_len_cpu(self) -> torch.Tensor:
        """
        Return: seq lens for each batch.
        """

    def get_indexer_seq_len(self) -> torch.Tensor:
        """
        Return: seq lens for each batch.
        """

    def get_dsa_extend_len_cpu(self) -> List[int]:
        """
        Return: extend seq lens for each batch.
        """

    def get_token_to_batch_idx(self) -> torch.Tensor:
        """
        Return: batch idx for each token.
        """

    @abstractmethod
    def topk_transform(
        self,
        logits: torch.Tensor,
        topk: int,
    ) -> torch.Tensor:
        """
        Perform topk selection on the logits and possibly transform the result.

        NOTE that attention backend may override this function to do some
        transformation, which means the result of this topk_transform may not
        be the topk indices of the input logits.

        Return: Anything, since it will be passed to the attention backend
                for further processing on sparse attention computation.
                Don't assume it is the topk indices of the input logits.
        """


@dataclass(frozen=True)
class DSAIndexerMetadata(BaseIndexerMetadata):
    attn_metadata: DSAMetadata
    topk_transform_method: TopkTransformMethod
    topk_backend: DSATopKBackend = DSATopKBackend.SGL_KERNEL
    paged_mqa_schedule_metadata: Optional[torch.Tensor] = None
    paged_mqa_ctx_lens_2d: Optional[torch.Tensor] = None
    force_unfused_topk: bool = False

    def get_seqlens_int32(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_seqlens_int32: it never ran in any recording (see sglang/REMOVED.md)')

    def get_page_table_64(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_page_table_64: it never ran in any recording (see sglang/REMOVED.md)')

    def get_page_table_1(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_page_table_1: it never ran in any recording (see sglang/REMOVED.md)')

    def get_seqlens_expanded(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_seqlens_expanded: it never ran in any recording (see sglang/REMOVED.md)')

    def get_indexer_kvcache_range(self) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_indexer_kvcache_range: it never ran in any recording (see sglang/REMOVED.md)')

    def get_indexer_seq_len(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_indexer_seq_len: it never ran in any recording (see sglang/REMOVED.md)')

    def get_indexer_seq_len_cpu(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_indexer_seq_len_cpu: it never ran in any recording (see sglang/REMOVED.md)')

    def get_dsa_extend_len_cpu(self) -> List[int]:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_dsa_extend_len_cpu: it never ran in any recording (see sglang/REMOVED.md)')

    def get_token_to_batch_idx(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.get_token_to_batch_idx: it never ran in any recording (see sglang/REMOVED.md)')

    def topk_transform(
        self,
        logits: torch.Tensor,
        topk: int,
        ks: Optional[torch.Tensor] = None,
        cu_seqlens_q: Optional[torch.Tensor] = None,
        ke_offset: Optional[torch.Tensor] = None,
        batch_idx_list: Optional[List[int]] = None,
        topk_indices_offset_override: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of DSAIndexerMetadata.topk_transform: it never ran in any recording (see sglang/REMOVED.md)')
