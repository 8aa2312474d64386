from __future__ import annotations



from sglang.srt.mem_cache.unified_cache.components.tree_component import (
    ComponentType,
    TreeComponent,
    )



class MambaComponent(TreeComponent):
    component_type = ComponentType.MAMBA

    # ---- HiCache Hooks ----

