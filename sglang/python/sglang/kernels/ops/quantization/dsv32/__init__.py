"""DSA only."""

from .elementwise import (
    fused_k_indexer_norm_rope,
    fused_k_indexer_norm_rope_store,
)

__all__ = [
    "fused_k_indexer_norm_rope",
    "fused_k_indexer_norm_rope_store",
]
