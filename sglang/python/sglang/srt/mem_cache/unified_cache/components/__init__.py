from sglang.srt.mem_cache.unified_cache.components.full_component import FullComponent
from sglang.srt.mem_cache.unified_cache.components.mamba_component import MambaComponent
from sglang.srt.mem_cache.unified_cache.components.swa_component import SWAComponent
from sglang.srt.mem_cache.unified_cache.components.tree_component import (
    _NUM_COMPONENT_TYPES,
    BASE_COMPONENT_TYPE,
    CacheTransferPhase,
    ComponentData,
    ComponentType,
    EvictLayer,
    LRURefreshPhase,
    PrepareLoadBackResult,
    PreparePrefetchResult,
    TreeComponent,
    get_and_increase_time_counter,
    next_component_uuid,
)

__all__ = [
    "BASE_COMPONENT_TYPE",
    "ComponentData",
    "ComponentType",
    "EvictLayer",
    "FullComponent",
    "CacheTransferPhase",
    "LRURefreshPhase",
    "MambaComponent",
    "PrepareLoadBackResult",
    "PreparePrefetchResult",
    "SWAComponent",
    "TreeComponent",
    "_NUM_COMPONENT_TYPES",
    "next_component_uuid",
    "get_and_increase_time_counter",
]
