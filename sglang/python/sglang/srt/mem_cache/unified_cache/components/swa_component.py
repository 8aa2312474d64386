from __future__ import annotations



from sglang.srt.mem_cache.unified_cache.components.tree_component import (
    ComponentType,
    TreeComponent,
    )



class SWAComponent(TreeComponent):
    """Sliding window attention component.

    Each SWA node stores translated SWA pool indices as its component
    value, independent of the full attention indices on the same tree node.
    When SWA data is evicted from an internal node the node is tombstoned
    — its SWA component value becomes None while the full attention
    value stays intact.
    """

    component_type = ComponentType.SWA

    # ---- HiCache Hooks ----

