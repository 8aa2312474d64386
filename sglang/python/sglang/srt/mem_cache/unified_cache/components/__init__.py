from sglang.srt.mem_cache.unified_cache.components.full_component import FullComponent
from sglang.srt.mem_cache.unified_cache.components.mamba_component import MambaComponent
from sglang.srt.mem_cache.unified_cache.components.swa_component import SWAComponent
from sglang.srt.mem_cache.unified_cache.components.tree_component import (
    _NUM_COMPONENT_TYPES,
    BASE_COMPONENT_TYPE,
    CacheTransferPhase,
    ComponentType,
    TreeComponent,
    )

__all__ = [
    "BASE_COMPONENT_TYPE",
    "ComponentType",
    "FullComponent",
    "CacheTransferPhase",
    "MambaComponent",
    "SWAComponent",
    "TreeComponent",
    "_NUM_COMPONENT_TYPES",
]
