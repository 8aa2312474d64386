import functools
import logging
from enum import IntEnum
from typing import TYPE_CHECKING, Callable

import torch

from sglang.srt.environ import envs
from sglang.srt.utils import get_npu_memory_capacity, is_npu

if TYPE_CHECKING:
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)
_is_npu = is_npu()
indexer_weight_stream = None
gva_is_inited = False


class NPUACLFormat(IntEnum):
    ACL_FORMAT_UNDEFINED = -1
    ACL_FORMAT_ND = 2
    ACL_FORMAT_FRACTAL_NZ = 29


def _call_once(fn: Callable):

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if getattr(fn, "_has_been_called", False):
            logger.debug("Function {} has already been called.", fn.__name__)
            return

        fn._has_been_called = True
        return fn(*args, **kwargs)

    return wrapper


def set_default_server_args(args: "ServerArgs"):
    raise NotImplementedError("removed by slim: never run in any recording")


@_call_once
def init_npu_backend():
    raise NotImplementedError("removed by slim: never run in any recording")




def npu_format_cast(
    tensor: torch.Tensor,
    acl_format: NPUACLFormat = NPUACLFormat.ACL_FORMAT_FRACTAL_NZ,
    *,
    customize_dtype=None,
    input_dtype=None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


def get_indexer_weight_stream():
    raise NotImplementedError("removed by slim: never run in any recording")


def init_zbal(world_size, gpu_id, world_rank, do_check=True):
    raise NotImplementedError("removed by slim: never run in any recording")


def lazy_init_zbal_gva_mem(
    device, gpu_id, world_rank, world_size, cpu_group=None, do_check=True
):
    raise NotImplementedError("removed by slim: never run in any recording")


share_stream = None
routed_stream = None




    # TODO LKL: set stream limit has impact on precision
    # torch.npu.set_stream_limit(share_stream, 8, 16)




    # TODO LKL: set stream limit has impact on precision
    # torch.npu.set_stream_limit(routed_stream, 16, 32)


def wait_share_stream():
    raise NotImplementedError("removed by slim: never run in any recording")




def process_shared_expert(hidden_states, forward_func):
    raise NotImplementedError("removed by slim: never run in any recording")


