import functools
import logging
from typing import TYPE_CHECKING, Callable


from sglang.srt.utils import is_npu

if TYPE_CHECKING:
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)
_is_npu = is_npu()
indexer_weight_stream = None
gva_is_inited = False


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
    raise NotImplementedError('slim removed the body of set_default_server_args: it never ran in any recording (see sglang/REMOVED.md)')


def lazy_init_zbal_gva_mem(
    device, gpu_id, world_rank, world_size, cpu_group=None, do_check=True
):
    raise NotImplementedError('slim removed the body of lazy_init_zbal_gva_mem: it never ran in any recording (see sglang/REMOVED.md)')


share_stream = None
routed_stream = None


    # TODO LKL: set stream limit has impact on precision
    # torch.npu.set_stream_limit(share_stream, 8, 16)


    # TODO LKL: set stream limit has impact on precision
    # torch.npu.set_stream_limit(routed_stream, 16, 32)


def wait_share_stream():
    raise NotImplementedError('slim removed the body of wait_share_stream: it never ran in any recording (see sglang/REMOVED.md)')


