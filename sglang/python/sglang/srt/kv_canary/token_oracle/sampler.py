from __future__ import annotations



from sglang.srt.kv_canary.token_oracle.oracle import TokenOracle
from sglang.srt.kv_canary.token_oracle.oracle_manager import (
    TokenOracleManager,
    )



def install_oracle_sampler(*, oracle: TokenOracle) -> TokenOracleManager:
    raise NotImplementedError('slim removed the body of install_oracle_sampler: it never ran in any recording (see sglang/REMOVED.md)')


