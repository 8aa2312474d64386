from __future__ import annotations

import logging
import threading

import zmq

from sglang.srt.disaggregation.base.conn import (
    BaseKVBootstrapServer,
    BaseKVManager,
    BaseKVReceiver,
    BaseKVSender,
    KVArgs,
    StateType,
)
from sglang.srt.disaggregation.utils import (
    DisaggregationMode,
    )
from sglang.srt.distributed import get_pp_group, get_world_group
from sglang.srt.environ import envs
from sglang.srt.layers.dp_attention import (
    get_attention_dp_rank,
    get_attention_dp_size,
)
from sglang.srt.runtime_context import get_parallel, get_serving
from sglang.srt.server_args import ServerArgs
from sglang.srt.utils.network import (
    NetworkAddress,
    get_local_ip_auto,
    )

logger = logging.getLogger(__name__)


# Reuse a keep-alive session per bootstrap_addr for decode-side bootstrap queries
# so we don't open a fresh TCP connection per query (that churns short-lived
# sockets and can exhaust ephemeral ports under high concurrency). Thread-local
# because requests.Session is not safe for concurrent cross-thread use.
_bootstrap_sessions = threading.local()


class CommonKVManager(BaseKVManager):
    pass


class CommonKVSender(BaseKVSender):
    pass


class CommonKVReceiver(BaseKVReceiver):
    _ctx = zmq.Context()
    _socket_cache = {}
    _socket_locks = {}
    _global_lock = threading.Lock()

class CommonKVBootstrapServer(BaseKVBootstrapServer):
    pass
