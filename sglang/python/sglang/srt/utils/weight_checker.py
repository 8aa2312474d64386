import logging
from typing import Any, Callable, Dict, Optional

import torch
from pydantic import BaseModel, ConfigDict


logger = logging.getLogger(__name__)


class _StrictBaseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParallelismInfo(_StrictBaseModel):
    tp_rank: int
    tp_size: int
    dp_rank: int
    dp_size: int
    pp_rank: int
    pp_size: int
    rank: int
    size: int


class ChecksumInfo(_StrictBaseModel):
    checksums: Dict[str, str]
    per_gpu_checksum: str
    parallelism_info: ParallelismInfo


_NON_PERSISTENT_BUFFER_PATTERNS = (
    "cos_sin_cache",
    "inv_freq",
    "freqs_cis",
    "_weight_fp32",
)


class WeightChecker:
    def __init__(self, *, get_model: Callable[[], Any], ps: Any):
        self._get_model = get_model
        self._ps = ps
        self._snapshot_tensors = None

    def handle(self, action: str, allow_quant_error: bool = False) -> Optional[Dict]:
        raise NotImplementedError('slim removed the body of WeightChecker.handle: it never ran in any recording (see sglang/REMOVED.md)')

def _hash_tensor(t: torch.Tensor) -> str:
    raise NotImplementedError('slim removed the body of _hash_tensor: it never ran in any recording (see sglang/REMOVED.md)')


