from __future__ import annotations



from sglang.kernels.ops.kv_canary.write import WritePlan
from sglang.srt.kv_canary.plan_input import PlanInput



class SingleForwardManager:
    """Owns the state of one inner ``model.forward`` invocation."""

