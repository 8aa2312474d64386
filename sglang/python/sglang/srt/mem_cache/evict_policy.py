from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Tuple, Union

if TYPE_CHECKING:
    from sglang.srt.mem_cache.radix_cache import TreeNode


class EvictionStrategy(ABC):
    @abstractmethod
    def get_priority(self, node: TreeNode) -> Union[float, Tuple]:
        pass


class LRUStrategy(EvictionStrategy):
    def get_priority(self, node: TreeNode) -> float:
        raise NotImplementedError('slim removed the body of LRUStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class LFUStrategy(EvictionStrategy):
    def get_priority(self, node: TreeNode) -> Tuple[int, float]:
        raise NotImplementedError('slim removed the body of LFUStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class FIFOStrategy(EvictionStrategy):
    def get_priority(self, node: TreeNode) -> float:
        raise NotImplementedError('slim removed the body of FIFOStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class MRUStrategy(EvictionStrategy):
    def get_priority(self, node: TreeNode) -> float:
        raise NotImplementedError('slim removed the body of MRUStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class FILOStrategy(EvictionStrategy):
    def get_priority(self, node: TreeNode) -> float:
        raise NotImplementedError('slim removed the body of FILOStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class PriorityStrategy(EvictionStrategy):
    """Priority-aware eviction: lower priority values evicted first, then LRU within same priority."""

    def get_priority(self, node: TreeNode) -> Tuple[int, float]:
        # Return (priority, last_access_time) so lower priority nodes are evicted first
        raise NotImplementedError('slim removed the body of PriorityStrategy.get_priority: it never ran in any recording (sglang/REMOVED.md, `slim plan --json`)')


class SLRUStrategy(EvictionStrategy):
    pass
