from __future__ import annotations

import logging
from typing import TypeVar


from sglang.srt.mem_cache.base_prefix_cache import (
    BasePrefixCache,
    )

# UnifiedTreeNode / UnifiedLRUList live on the tree core; re-exported here
# because other modules and tests import them from this module.
from sglang.srt.mem_cache.unified_cache.components import (
    ComponentType,
    FullComponent,
    MambaComponent,
    SWAComponent,
    TreeComponent,
)
from sglang.srt.mem_cache.unified_cache.tree_core_registry import create_tree_core
from sglang.srt.mem_cache.unified_cache.unified_tree_core import (  # noqa: F401
    NodeId,
    UnifiedTreeNode,
)
from sglang.srt.session.streaming_session import StreamingSession



T = TypeVar("T")


COMPONENT_REGISTRY: dict[ComponentType, type[TreeComponent]] = {
    ComponentType.FULL: FullComponent,
    ComponentType.MAMBA: MambaComponent,
    ComponentType.SWA: SWAComponent,
}


logger = logging.getLogger(__name__)


class UnifiedRadixCache(BasePrefixCache):
    # ---- Internal Helpers ----

    # ---- HiCache: Backup / LoadBack ----

    # ---- HiCache: Async Event Management ----

    # ---- HiCache: Scheduler Entry Points ----

    # ---- Query / Inspection APIs ----
    # These APIs exist for compatibility with other RadixTree implementations.
    # TODO: simplify and consolidate in a future refactor.

    # ---- Session radix cache API (delegates to composed UnifiedSessionRefTracker) ----

    # ---- Streaming session API (delegates to composed StreamingSession) ----

    # ---- TreeCore state delegation ----
    # The facade re-exposes tree-owned config (page_size, enable_storage, ...) so its
    # own coordination methods and external callers read them off the cache.

    # ``page_size`` keeps a setter: StreamingSession forwards assignment onto its
    # inner cache (the PrefixCacheTrait surface).
    pass
