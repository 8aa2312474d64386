from __future__ import annotations

from typing import TYPE_CHECKING


from sglang.srt.kv_canary.token_oracle.oracle import TokenOracle
from sglang.srt.kv_canary.token_oracle.oracle_manager import (
    TokenOracleManager,
    )
from sglang.srt.layers.sampler import Sampler, register_sampler_backend

if TYPE_CHECKING:
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput
    from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo


def install_oracle_sampler(*, oracle: TokenOracle) -> TokenOracleManager:
    raise NotImplementedError('slim removed the body of install_oracle_sampler: it never ran in any recording (see sglang/REMOVED.md)')


