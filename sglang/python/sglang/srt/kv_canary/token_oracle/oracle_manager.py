from __future__ import annotations

from typing import TYPE_CHECKING


from sglang.srt.kv_canary.token_oracle.oracle import TokenOracle

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class TokenOracleManager:
    pass


