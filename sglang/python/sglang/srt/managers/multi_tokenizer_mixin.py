from __future__ import annotations

# Copyright 2023-2024 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================

"""
Mixin classes and utils for multi-http-worker mode
This file uses multiple processes to handle requests and tokenization, reducing the overhead of python and http server.
"""

import logging
import zlib
from typing import TYPE_CHECKING, Any, Dict, List, Type


from sglang.srt.disaggregation.utils import TransferBackend
from sglang.srt.managers.disagg_service import start_disagg_service
from sglang.srt.managers.io_struct import (
    BaseBatchReq,
    BaseReq,
    BatchEmbeddingOutput,
    BatchStrOutput,
    BatchTokenIDOutput,
    ContinueGenerationReqInput,
    FreezeGCReq,
    PauseContinueBroadcastReq,
    PauseGenerationReqInput,
    TokenizerWorkerRegistrationReq,
    async_sock_recv,
    async_sock_send,
    sock_recv,
    sock_send,
    unwrap_from_pickle,
    wrap_as_pickle,
)
from sglang.srt.managers.load_snapshot import (
    create_load_snapshot_reader,
    zmq_reader_owner,
)
from sglang.srt.managers.tokenizer_manager import TokenizerManager
from sglang.srt.server_args import PortArgs, ServerArgs
from sglang.srt.utils import (
    configure_logger,
    kill_itself_when_parent_died,
    kill_process_tree,
)
from sglang.srt.utils.network import get_zmq_socket
from sglang.utils import get_exception_traceback

if TYPE_CHECKING:
    from sglang.srt.managers.detokenizer_manager import DetokenizerManager

logger = logging.getLogger(__name__)


class MultiHttpWorkerDetokenizerMixin:
    """Mixin class for DetokenizerManager"""

class MultiTokenizerRouter:
    """A router between tokenizer managers and the scheduler/detokenizer manager.

    Forward: tokenizer managers → router → scheduler.
    Backward: detokenizer manager → router → tokenizer managers.
    Also broadcasts pause/continue to all tokenizer managers for consistent is_pause state.
    """

class MultiDetokenizerRouter:
    """Route scheduler outputs to one of N DetokenizerManager workers.

    Each request is pinned to a worker by hashing its ``http_worker_ipc`` with
    ``zlib.crc32`` (deterministic across runs), so all outputs of the same rid
    always land on the same detokenizer and ``decode_status`` stays consistent.
    """

def run_multi_detokenizer_router_process(
    ipc_name_list: List[str],
    server_args: ServerArgs,
    port_args: PortArgs,
):
    raise NotImplementedError('slim removed the body of run_multi_detokenizer_router_process: it never ran in any recording (see sglang/REMOVED.md)')


class TokenizerWorker(TokenizerManager):
    """Tokenizer Worker in multi-http-worker mode"""

def get_tokenizer_worker_class(server_args: ServerArgs) -> Type[TokenizerWorker]:
    raise NotImplementedError('slim removed the body of get_tokenizer_worker_class: it never ran in any recording (see sglang/REMOVED.md)')


async def print_exception_wrapper(func):
    raise NotImplementedError('slim removed the body of print_exception_wrapper: it never ran in any recording (see sglang/REMOVED.md)')


def get_main_process_id() -> int:
    raise NotImplementedError('slim removed the body of get_main_process_id: it never ran in any recording (see sglang/REMOVED.md)')


def read_from_shared_memory(name: str) -> Any:
    raise NotImplementedError('slim removed the body of read_from_shared_memory: it never ran in any recording (see sglang/REMOVED.md)')


def write_data_for_multi_tokenizer(
    port_args: PortArgs,
    server_args: ServerArgs,
    scheduler_info: Dict,
):
    raise NotImplementedError('slim removed the body of write_data_for_multi_tokenizer: it never ran in any recording (see sglang/REMOVED.md)')
