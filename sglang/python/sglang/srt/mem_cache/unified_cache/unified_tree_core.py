"""The radix tree mechanism.

``UnifiedTreeCore`` owns the tree's member-var state -- the tree structure (root
node), the per-component LRU lists, the per-component size counters, the
evictable device/host leaf sets, and the empty match result -- plus ``reset()``.
It also defines the tree's building blocks (``UnifiedTreeNode``,
``UnifiedLRUList``).

The cache builds the component drivers and passes them in; the tree holds them
(``self.components_by_type``) to drive their tree-level hooks. The components hold the
cache for cache-level logic, but the TreeCore itself never touches it.
"""

# TODO(Jialin): Split this file into smaller cohesive modules (e.g. tree
# building blocks, insert/match walks, eviction drivers).

from __future__ import annotations

import logging
from array import array
from typing import NamedTuple, Optional

import torch

from sglang.srt.mem_cache.hicache_storage import (
    PoolTransfer,
    )
from sglang.srt.mem_cache.unified_cache.components import (
    ComponentType,
    )
from sglang.srt.mem_cache.unified_cache.unified_tree_core_interface import (
    NodeId,
    UnifiedTreeCoreInterface,
)


logger = logging.getLogger(__name__)


class StorageBackupSpec(NamedTuple):
    """A node's device->storage backup spec, gathered tree-side."""

    host_value: torch.Tensor
    token_ids: array
    hash_value: list[str]
    prefix_keys: Optional[list[str]]
    comp_xfers: dict[ComponentType, list[PoolTransfer]]


class UnifiedTreeNode:
    counter = 0

class UnifiedLRUList:
    pass


# WALK (one node per step) -> COMMIT (leaf + commit hooks) -> TAIL (refresh + backup).
class UnifiedTreeCore(UnifiedTreeCoreInterface):
    """The radix tree mechanism: owns the tree structure, per-node values, the
    per-component LRUs, the size/leaf bookkeeping, and the component drivers,
    plus ``reset()``.

    TODO(Jialin): the tree operations still live on ``UnifiedRadixCache`` and
    reach this state through its proxy properties; they migrate onto this class
    as the TreeCore split completes.
    """

    # ==== Tree API ====

    def reset(self) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.reset: it never ran in any recording (see sglang/REMOVED.md)')

    # ==== HiCache ====

    # ==== Others ====

