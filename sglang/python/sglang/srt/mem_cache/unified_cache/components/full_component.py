from __future__ import annotations



from sglang.srt.mem_cache.unified_cache.components.tree_component import (
    ComponentType,
    TreeComponent,
)



class FullComponent(TreeComponent):
    component_type = ComponentType.FULL

    # ---- HiCache Hooks ----

