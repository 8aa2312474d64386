"""K3 SP-MoE MNNVL reduce-scatter/all-gather dispatch.

The reduce-scatter folds the pending attention residual into its reduction
epilogue.  The matching all-gather reassembles the token shards after MoE.
Both reuse CustomAllReduceV2's push workspace and fall back as a pair outside
the checked-in GB300 tuning envelope.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Optional

import torch

from sglang.srt.environ import envs
from sglang.srt.layers import k3_ar_fusion

if TYPE_CHECKING:
    from sglang.srt.distributed.device_communicators.custom_all_reduce_v2 import (
        CustomAllReduceV2,
    )
    from sglang.srt.distributed.parallel_state import GroupCoordinator

logger = logging.getLogger(__name__)

_HIDDEN_SIZE = 7168
_SUPPORTED_WORLD_SIZES = (4, 8)

# Named persistent symmetric buffers, one per NVLS-aliased tensor. Every rank
# must resolve the same (buffer, offset) for these, which a per-forward
# allocation does not give -- see k3_ar_fusion.symm_buffer.
_O_PROJ = "sp_o_proj"  # TP-partial o_proj output, read by the pull RS
_ALL_GATHER = "sp_all_gather"  # full-batch output of the direct AG
_ATTN_RES_AG = "sp_attn_res_ag"  # ... and of its attention-residual fusion


class _State:
    def __init__(self, group: GroupCoordinator, comm: CustomAllReduceV2):
        self.group = group
        self.comm = comm


_STATE: Optional[_State] = None
_INITIALIZED = False
_O_PROJ_RESULT_BUFFERS: dict[int, torch.Tensor] = {}
_O_PROJ_OUTPUT_ROWS: ContextVar[Optional[int]] = ContextVar(
    "k3_sp_o_proj_output_rows", default=None
)


def _init_state() -> Optional[_State]:
    raise NotImplementedError("removed by slim: never run in any recording")


def enabled() -> bool:
    return _init_state() is not None




def requires_symmetric_rs(num_tokens: int, device: torch.device) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_o_proj_output_buffer(
    num_tokens: int, dtype: torch.dtype, hidden_size: int = _HIDDEN_SIZE
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


@contextmanager
def o_proj_output_rows(num_rows: int):
    raise NotImplementedError("removed by slim: never run in any recording")


def get_o_proj_output_rows(default: int) -> int:
    num_rows = _O_PROJ_OUTPUT_ROWS.get()
    return default if num_rows is None else num_rows


def register_o_proj_output(result: torch.Tensor, output: torch.Tensor) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def finish_padded_o_proj_output(
    result: torch.Tensor, num_padded: int
) -> Optional[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")






def reduce_scatter_res(
    tensor: torch.Tensor, residual: Optional[torch.Tensor]
) -> Optional[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def reduce_scatter_attn_res(
    tensor: torch.Tensor,
    residual: Optional[torch.Tensor],
    bank: torch.Tensor,
    cw: torch.Tensor,
    ow: torch.Tensor,
    nvb: int,
    eps: float,
) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    raise NotImplementedError("removed by slim: never run in any recording")


def all_gather(tensor: torch.Tensor) -> Optional[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def attn_res_all_gather(
    prefix: torch.Tensor,
    bank: torch.Tensor,
    cw: torch.Tensor,
    ow: torch.Tensor,
    nvb: int,
    eps: float,
    *,
    write_prefix: bool = False,
) -> Optional[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")
