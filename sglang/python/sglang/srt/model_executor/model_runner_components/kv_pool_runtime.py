from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import msgspec

from sglang.srt.configs.hybrid_arch import mambaish_config
from sglang.srt.distributed import get_world_group
from sglang.srt.model_executor.cuda_graph_config import Backend
from sglang.srt.platforms import current_platform
from sglang.srt.utils.common import get_available_gpu_memory, get_device_memory_capacity

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)


def is_post_capture_kv_active(
    *, server_args: ServerArgs, is_draft_worker: bool
) -> bool:
    return (
        server_args.post_capture_kv_sizing_planned()
        and current_platform.is_cuda()
        and not is_draft_worker
    )


class PostCaptureKVResize(msgspec.Struct, frozen=True, kw_only=True):
    max_total_num_tokens: int
    full_max_total_num_tokens: Optional[int]
    swa_max_total_num_tokens: Optional[int]
    capped_max_running_requests: Optional[int]


def compute_post_capture_kv_resize(
    model_runner: ModelRunner,
) -> PostCaptureKVResize:
    raise NotImplementedError('slim removed the body of compute_post_capture_kv_resize: it never ran in any recording (see sglang/REMOVED.md)')
