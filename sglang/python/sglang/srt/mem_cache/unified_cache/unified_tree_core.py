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
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Sequence

import torch

from sglang.srt.mem_cache.base_prefix_cache import (
    DecLockRefParams,
    DecLockRefResult,
    IncLockRefResult,
    InsertParams,
    InsertResult,
    MatchPrefixParams,
    MatchResult,
)
from sglang.srt.mem_cache.hicache_storage import (
    PoolTransfer,
    PoolTransferResult,
)
from sglang.srt.mem_cache.radix_cache import RadixKey
from sglang.srt.mem_cache.unified_cache.cache_action import (
    CacheAction,
    ComponentAction,
    )
from sglang.srt.mem_cache.unified_cache.components import (
    _NUM_COMPONENT_TYPES,
    CacheTransferPhase,
    ComponentData,
    ComponentType,
    TreeComponent,
    get_and_increase_time_counter,
)
from sglang.srt.mem_cache.unified_cache.unified_tree_core_interface import (
    DecSwaLockOnlyResult,
    DemoteResult,
    DriveHostEvictionResult,
    DropSubtreeNoHostResult,
    EvictDeviceLeafResult,
    EvictDeviceNextNodeResult,
    InsertStepResult,
    NodeId,
    RadixCacheWalkResult,
    UnifiedTreeCoreInterface,
)
from sglang.srt.mem_cache.utils import (
    get_eviction_strategy,
    )

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.mem_cache.cache_init_params import CacheInitParams

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

    def __init__(self, tree_components: tuple[ComponentType, ...], priority: int = 0):
        # Plain dict (not defaultdict): a missing-key read must raise, never
        # silently mint an unregistered node outside the TreeCore arena.
        self.children: dict[Any, UnifiedTreeNode] = {}
        self.parent: UnifiedTreeNode | None = None
        self.key: Optional[RadixKey] = None
        self.component_types = tree_components
        # list indexed by ComponentType (int enum 0..N-1)
        self.component_data: list[ComponentData] = [
            ComponentData() for _ in range(_NUM_COMPONENT_TYPES)
        ]
        self.last_access_time = get_and_increase_time_counter()
        self.creation_time = get_and_increase_time_counter()
        self.hash_value = None
        self.hit_count = 0
        self.priority = priority
        self.lru_prev: list[UnifiedTreeNode | None] = [None] * (
            _NUM_COMPONENT_TYPES * 2
        )
        self.lru_next: list[UnifiedTreeNode | None] = [None] * (
            _NUM_COMPONENT_TYPES * 2
        )
        self.id = UnifiedTreeNode.counter
        UnifiedTreeNode.counter += 1
        self.write_through_pending_id: Optional[int] = None

    @property
    def backuped(self) -> bool:
        """Tree-level: Full KV present on host."""
        return self.component_data[ComponentType.FULL].host_value is not None

    @property
    def evicted(self) -> bool:
        """Tree-level: Full KV not on device (non-root with value=None)."""
        return (
            self.parent is not None
            and self.component_data[ComponentType.FULL].value is None
        )

    def __lt__(self, other: UnifiedTreeNode):
        return self.last_access_time < other.last_access_time

class UnifiedLRUList:
    def __init__(
        self,
        component_type: ComponentType,
        tree_components: tuple[ComponentType, ...],
        use_host_ptr: bool = False,
        is_referenced: Optional[Callable[[UnifiedTreeNode], bool]] = None,
    ):
        self.component_type = component_type
        # Pointer slot: host LRU uses offset slots so device/host pointers
        # never collide on the same node.
        self._pt: int = component_type + (_NUM_COMPONENT_TYPES if use_host_ptr else 0)
        self.head = UnifiedTreeNode(tree_components)
        self.tail = UnifiedTreeNode(tree_components)
        self.head.lru_next[self._pt] = self.tail
        self.tail.lru_prev[self._pt] = self.head
        self.cache: dict[int, UnifiedTreeNode] = {}
        # Session partition: [head .. mid) holds session-referenced nodes and
        # (mid .. tail] unreferenced ones, so evictions directly walks (tail -> head).
        self._is_referenced = is_referenced
        self.mid: Optional[UnifiedTreeNode] = None
        self.cursor: Optional[UnifiedTreeNode] = None
        if is_referenced is not None:
            self.mid = UnifiedTreeNode(tree_components)
            self.cursor = UnifiedTreeNode(tree_components)
            for ct in tree_components:
                for node in (self.mid, self.cursor):
                    node.component_data[ct].lock_ref = 1
                    node.component_data[ct].host_lock_ref = 1
            self._add_node_after(self.head, self.mid)

# WALK (one node per step) -> COMMIT (leaf + commit hooks) -> TAIL (refresh + backup).
class UnifiedTreeCore(UnifiedTreeCoreInterface):
    """The radix tree mechanism: owns the tree structure, per-node values, the
    per-component LRUs, the size/leaf bookkeeping, and the component drivers,
    plus ``reset()``.

    TODO(Jialin): the tree operations still live on ``UnifiedRadixCache`` and
    reach this state through its proxy properties; they migrate onto this class
    as the TreeCore split completes.
    """

    def __init__(
        self,
        params: CacheInitParams,
        components: dict[ComponentType, TreeComponent],
    ):
        self.page_size = params.page_size
        self.is_eagle = params.is_eagle and ComponentType.MAMBA not in components
        self.enable_hicache = False
        self.enable_storage = False
        self.write_through_threshold = 256
        self.is_write_back = False
        self.has_swa_host_pool = False
        self.enable_session_radix_cache = params.enable_session_radix_cache
        self.eviction_strategy = get_eviction_strategy(params.eviction_policy.lower())

        # ``device`` is derived from the construction-time allocator; the
        # allocator/pool themselves are owned by the cache, not the tree.
        if params.token_to_kv_pool_allocator:
            self.device = params.token_to_kv_pool_allocator.device
        else:
            self.device = torch.device("cpu")

        # The cache builds and owns the component drivers; the tree references
        # them to drive their tree-level hooks, attaching itself as tree_core.
        assert components
        self.component_types = tuple(components.keys())
        self.components_by_type: dict[ComponentType, TreeComponent] = components
        for component in components.values():
            component.tree_core = self
        self.components: tuple[TreeComponent, ...] = tuple(
            self.components_by_type.values()
        )

        self.enable_kv_cache_events = params.enable_kv_cache_events
        self.kv_event_queue = []

        self.reset()

    # ==== Tree API ====

    def reset(self) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.reset: it never ran in any recording (see sglang/REMOVED.md)')

    def node_by_id(self, node_id: NodeId) -> UnifiedTreeNode:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.node_by_id: it never ran in any recording (see sglang/REMOVED.md)')

    def is_backuped(self, node_id: NodeId) -> bool:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.is_backuped: it never ran in any recording (see sglang/REMOVED.md)')

    def is_root(self, node_id: NodeId) -> bool:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.is_root: it never ran in any recording (see sglang/REMOVED.md)')

    def get_last_hash_value(self, node_id: NodeId) -> Optional[str]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.get_last_hash_value: it never ran in any recording (see sglang/REMOVED.md)')

    def get_prefix_hash_values(self, node_id: NodeId) -> list[str]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.get_prefix_hash_values: it never ran in any recording (see sglang/REMOVED.md)')

    def inc_lock_ref(
        self, node_id: NodeId, skip_lock_components: Sequence[ComponentType] = ()
    ) -> IncLockRefResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.inc_lock_ref: it never ran in any recording (see sglang/REMOVED.md)')

    def dec_lock_ref(
        self,
        node_id: NodeId,
        params: Optional[DecLockRefParams] = None,
        skip_swa: bool = False,
    ) -> DecLockRefResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.dec_lock_ref: it never ran in any recording (see sglang/REMOVED.md)')

    def dec_swa_lock_only(
        self,
        node_id: NodeId,
        swa_uuid_for_lock: Optional[int],
        skip_lock_node_ids: Optional[dict] = None,
    ) -> DecSwaLockOnlyResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.dec_swa_lock_only: it never ran in any recording (see sglang/REMOVED.md)')

    def inc_host_lock_ref(self, node_id: NodeId) -> IncLockRefResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.inc_host_lock_ref: it never ran in any recording (see sglang/REMOVED.md)')

    def dec_host_lock_ref(
        self, node_id: NodeId, params: Optional[DecLockRefParams] = None
    ) -> DecLockRefResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.dec_host_lock_ref: it never ran in any recording (see sglang/REMOVED.md)')

    def match_prefix(self, params: MatchPrefixParams) -> MatchResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.match_prefix: it never ran in any recording (see sglang/REMOVED.md)')

    def _match_prefix_helper(self, key: RadixKey) -> tuple[
        list[torch.Tensor],
        UnifiedTreeNode,
        UnifiedTreeNode,
        int,
        int,
        Optional[CacheAction | ComponentAction],
    ]:
        # Non-HiCache mode has only device-resident matches, so the scheduler
        # device anchor follows the best match. In HiCache mode, host-backed
        # nodes can also match, so we separately track the best device-resident
        # match for scheduler prefix indices and locking.
        raise NotImplementedError('slim removed the body of UnifiedTreeCore._match_prefix_helper: it never ran in any recording (see sglang/REMOVED.md)')

    @property
    def empty_match_result(self) -> MatchResult:
        """A shared empty MatchResult (empty device indices + boundary NodeIds)."""
        return self._empty_match_result

    def is_full_device_evicted(self, node_id: NodeId) -> bool:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.is_full_device_evicted: it never ran in any recording (see sglang/REMOVED.md)')

    def collect_full_device_indices(
        self, from_node_id: NodeId, until_node_id: NodeId
    ) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.collect_full_device_indices: it never ran in any recording (see sglang/REMOVED.md)')

    def begin_insert(self, params: InsertParams) -> InsertStepResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.begin_insert: it never ran in any recording (see sglang/REMOVED.md)')

    def resume_insert(self) -> InsertStepResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.resume_insert: it never ran in any recording (see sglang/REMOVED.md)')

    def has_ongoing_insert(self) -> bool:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.has_ongoing_insert: it never ran in any recording (see sglang/REMOVED.md)')

    def end_insert(self) -> list[CacheAction | ComponentAction]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.end_insert: it never ran in any recording (see sglang/REMOVED.md)')

    def _split_node(
        self, key: RadixKey, child: UnifiedTreeNode, split_len: int
    ) -> tuple[UnifiedTreeNode, Optional[CacheAction | ComponentAction]]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore._split_node: it never ran in any recording (see sglang/REMOVED.md)')

    def evict_device_start(
        self, component_type: ComponentType, request_cnt: int
    ) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.evict_device_start: it never ran in any recording (see sglang/REMOVED.md)')

    def evict_device_next_node(
        self, component_type: ComponentType, tracker: dict[ComponentType, int]
    ) -> EvictDeviceNextNodeResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.evict_device_next_node: it never ran in any recording (see sglang/REMOVED.md)')

    def evict_device_end(self, component_type: ComponentType) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.evict_device_end: it never ran in any recording (see sglang/REMOVED.md)')

    def evict_device_leaf(
        self, node_id: NodeId, is_write_back: bool
    ) -> EvictDeviceLeafResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.evict_device_leaf: it never ran in any recording (see sglang/REMOVED.md)')

    def drop_subtree_no_host(self, node_id: NodeId) -> DropSubtreeNoHostResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.drop_subtree_no_host: it never ran in any recording (see sglang/REMOVED.md)')

    def drive_host_eviction(
        self, component_type: ComponentType, num_tokens: int
    ) -> DriveHostEvictionResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.drive_host_eviction: it never ran in any recording (see sglang/REMOVED.md)')

    def demote(self, node_id: NodeId) -> DemoteResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.demote: it never ran in any recording (see sglang/REMOVED.md)')

    # ==== HiCache ====

    def set_hicache_enabled(self) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.set_hicache_enabled: it never ran in any recording (see sglang/REMOVED.md)')

    def insert_host(
        self,
        node_id: NodeId,
        key: RadixKey,
        host_value: torch.Tensor,
        hash_value: list[str],
    ) -> InsertResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.insert_host: it never ran in any recording (see sglang/REMOVED.md)')

    def build_backup_spec(self, node_id: NodeId):
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.build_backup_spec: it never ran in any recording (see sglang/REMOVED.md)')

    def build_storage_backup_spec(
        self, node_id: NodeId, pass_prefix_keys: bool
    ) -> Optional[StorageBackupSpec]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.build_storage_backup_spec: it never ran in any recording (see sglang/REMOVED.md)')

    def build_hicache_transfers(
        self,
        component_type: ComponentType,
        node_id: NodeId,
        phase: CacheTransferPhase,
        *,
        host_indices: Optional[torch.Tensor] = None,
        token_ids: Optional[Sequence[int]] = None,
        prefetch_tokens: int = 0,
        last_hash: Optional[str] = None,
    ) -> Optional[list[PoolTransfer]]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.build_hicache_transfers: it never ran in any recording (see sglang/REMOVED.md)')

    def build_load_back_spec(
        self, node_id: NodeId, req: Optional[Req] = None
    ) -> tuple[PoolTransfer, dict[ComponentType, list[PoolTransfer]]]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.build_load_back_spec: it never ran in any recording (see sglang/REMOVED.md)')

    def prefetch_anchor_info(self, node_id: NodeId) -> Optional[str]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.prefetch_anchor_info: it never ran in any recording (see sglang/REMOVED.md)')

    def commit_hicache_transfers(
        self,
        node_id: NodeId,
        phase: CacheTransferPhase,
        comp_xfers: dict[ComponentType, list[PoolTransfer]],
        *,
        cache_actions: list[CacheAction | ComponentAction],
        insert_result: Optional[InsertResult] = None,
        pool_storage_result: Optional[PoolTransferResult] = None,
    ) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.commit_hicache_transfers: it never ran in any recording (see sglang/REMOVED.md)')

    def commit_backup(
        self,
        node_id: NodeId,
        host_indices: torch.Tensor,
        comp_xfers: dict[ComponentType, list[PoolTransfer]],
    ) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.commit_backup: it never ran in any recording (see sglang/REMOVED.md)')

    def commit_load_back(
        self,
        node_id: NodeId,
        device_indices: torch.Tensor,
        kv_xfer: PoolTransfer,
        comp_xfers: dict[ComponentType, list[PoolTransfer]],
    ) -> list[CacheAction | ComponentAction]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.commit_load_back: it never ran in any recording (see sglang/REMOVED.md)')

    def mark_write_through_pending(self, node_id: NodeId) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.mark_write_through_pending: it never ran in any recording (see sglang/REMOVED.md)')

    def finish_write_through(self, node_ids: list[NodeId], ack_id: int) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.finish_write_through: it never ran in any recording (see sglang/REMOVED.md)')

    def set_component_device_value(
        self, node_id: NodeId, component_type: ComponentType, value: torch.Tensor
    ) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.set_component_device_value: it never ran in any recording (see sglang/REMOVED.md)')

    def get_component_device_value(
        self, node_id: NodeId, component_type: ComponentType
    ) -> Optional[torch.Tensor]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.get_component_device_value: it never ran in any recording (see sglang/REMOVED.md)')

    def component_has_host_value_only(
        self, node_id: NodeId, component_type: ComponentType
    ) -> bool:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.component_has_host_value_only: it never ran in any recording (see sglang/REMOVED.md)')

    # ==== Others ====

    def sanity_check(
        self,
        ongoing_write_through: list[tuple[int, NodeId]],
        ongoing_load_back: list[tuple[int, NodeId]],
    ) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.sanity_check: it never ran in any recording (see sglang/REMOVED.md)')

    def pretty_print(self) -> None:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.pretty_print: it never ran in any recording (see sglang/REMOVED.md)')

    def evictable_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.evictable_size: it never ran in any recording (see sglang/REMOVED.md)')

    def protected_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.protected_size: it never ran in any recording (see sglang/REMOVED.md)')

    def component_evictable_size(self, component_type: ComponentType) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.component_evictable_size: it never ran in any recording (see sglang/REMOVED.md)')

    def full_evictable_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.full_evictable_size: it never ran in any recording (see sglang/REMOVED.md)')

    def full_protected_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.full_protected_size: it never ran in any recording (see sglang/REMOVED.md)')

    def swa_evictable_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.swa_evictable_size: it never ran in any recording (see sglang/REMOVED.md)')

    def mamba_evictable_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.mamba_evictable_size: it never ran in any recording (see sglang/REMOVED.md)')

    def swa_protected_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.swa_protected_size: it never ran in any recording (see sglang/REMOVED.md)')

    def mamba_protected_size(self) -> int:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.mamba_protected_size: it never ran in any recording (see sglang/REMOVED.md)')

    def total_size(self) -> tuple[int, int]:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.total_size: it never ran in any recording (see sglang/REMOVED.md)')

    def walk_for_kv_canary(
        self, unlocked_only: bool, swa_resident_only: bool
    ) -> RadixCacheWalkResult:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.walk_for_kv_canary: it never ran in any recording (see sglang/REMOVED.md)')

    def all_values_flatten(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.all_values_flatten: it never ran in any recording (see sglang/REMOVED.md)')

    def all_mamba_values_flatten(self) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of UnifiedTreeCore.all_mamba_values_flatten: it never ran in any recording (see sglang/REMOVED.md)')
