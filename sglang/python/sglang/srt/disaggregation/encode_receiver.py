import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod
from contextlib import asynccontextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import torch
import uvicorn
import zmq
import zmq.asyncio
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse, Response
from transformers import PretrainedConfig

from sglang.srt.distributed.parallel_state import (
    GroupCoordinator,
    get_mooncake_transfer_engine,
)
from sglang.srt.environ import envs
from sglang.srt.managers.io_struct import GenerateReqInput, TokenizedGenerateReqInput
from sglang.srt.managers.multimodal_processor import get_mm_processor, import_processors
from sglang.srt.managers.schedule_batch import Modality, Req
from sglang.srt.server_args import ServerArgs
from sglang.srt.utils import ImageData
from sglang.srt.utils.common import safe_pickle_loads
from sglang.srt.utils.hf_transformers_utils import get_processor
from sglang.srt.utils.network import (
    NetworkAddress,
    get_local_ip_auto,
    get_zmq_socket_on_host,
)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sglang.srt.managers.scheduler import Scheduler


class EncoderBootstrapServer:
    """Lightweight bootstrap server for dynamic encoder discovery.

    Built on FastAPI + uvicorn to match the style of
    :mod:`sglang.srt.entrypoints.http_server`.  Runs in a daemon thread so
    the language-only tokenizer manager's main loop is unblocked.

    The set of registered URLs is exposed as the ``urls`` list passed in at
    construction time.  Callers that want to observe registrations without
    going through HTTP -- typically a co-located :class:`MMReceiver` -- share
    that list by reference: register/unregister mutate it in place under an
    internal lock, and the receiver simply reads ``self.encode_urls`` (the
    same list).  When ``urls`` is ``None`` the server allocates its own list,
    accessible through :meth:`list_urls`.

    Health-check tuning is controlled by env vars
    ``SGLANG_ENCODER_BOOTSTRAP_HEALTH_CHECK_INTERVAL`` (seconds; 0 disables),
    ``SGLANG_ENCODER_BOOTSTRAP_HEALTH_CHECK_TIMEOUT`` (seconds), and
    ``SGLANG_ENCODER_BOOTSTRAP_EVICTED_TTL`` (seconds; 0 keeps probing
    forever). Explicit constructor args take precedence over the env vars.
    """

    def __init__(
        self,
        host: str,
        port: int,
        urls: Optional[List[str]] = None,
        health_check_interval: Optional[float] = None,
        health_check_timeout: Optional[float] = None,
        evicted_ttl: Optional[float] = None,
    ):

        self.host = host
        self.port = port
        self._urls: List[str] = urls if urls is not None else []
        self._lock = threading.Lock()
        self._server: Optional[uvicorn.Server] = None  # set in _run_server
        self._health_check_interval = (
            health_check_interval
            if health_check_interval is not None
            else envs.SGLANG_ENCODER_BOOTSTRAP_HEALTH_CHECK_INTERVAL.get()
        )
        self._health_check_timeout = (
            health_check_timeout
            if health_check_timeout is not None
            else envs.SGLANG_ENCODER_BOOTSTRAP_HEALTH_CHECK_TIMEOUT.get()
        )
        self._evicted_ttl = (
            evicted_ttl
            if evicted_ttl is not None
            else envs.SGLANG_ENCODER_BOOTSTRAP_EVICTED_TTL.get()
        )
        # Evict only after this many consecutive probe failures (a busy
        # encoder can miss a single 2s probe under load), and keep probing
        # evicted URLs so they re-register automatically once healthy.
        # Values are eviction timestamps; URLs older than ``_evicted_ttl``
        # (when > 0) are permanently dropped.
        self._health_fail_threshold = 3
        self._health_fail_counts: Dict[str, int] = {}
        self._evicted_urls: Dict[str, float] = {}

        @asynccontextmanager
        async def lifespan(fast_api_app: FastAPI):
            task: Optional[asyncio.Task] = None
            if self._health_check_interval > 0:
                task = asyncio.create_task(self._health_check_loop())
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    try:
                        await task
                    except (asyncio.CancelledError, Exception):
                        pass

        self.app = FastAPI(lifespan=lifespan, openapi_url=None)

        @self.app.get("/health")
        async def _health() -> Response:
            return Response("OK")

        @self.app.post("/register_encoder_url")
        async def _register(data: dict):
            url = data.get("url") if isinstance(data, dict) else None
            if not url:
                return ORJSONResponse(
                    {"error": "Missing or empty 'url' field"}, status_code=400
                )
            self.register(url)
            return Response("OK")

        @self.app.delete("/unregister_encoder_url")
        async def _unregister(data: dict):
            url = data.get("url") if isinstance(data, dict) else None
            if not url:
                return ORJSONResponse(
                    {"error": "Missing or empty 'url' field"}, status_code=400
                )
            self.unregister(url)
            return Response("OK")

        @self.app.get("/list_encoder_urls")
        async def _list():
            return {"encoder_urls": self.list_urls()}

        self.thread = threading.Thread(
            target=self._run_server, daemon=True, name="EncoderBootstrap"
        )
        self.thread.start()

    # ------------------------------------------------------------------ #
    # In-process API (thread-safe; safe to call from any thread)         #
    # ------------------------------------------------------------------ #
    def register(self, url: str) -> bool:
        raise NotImplementedError("removed by slim: never run in any recording")

    def unregister(self, url: str) -> bool:
        raise NotImplementedError("removed by slim: never run in any recording")

    def list_urls(self) -> List[str]:
        raise NotImplementedError("removed by slim: never run in any recording")

    # ------------------------------------------------------------------ #
    # Health check                                                       #
    # ------------------------------------------------------------------ #

    async def _health_check_loop(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    # ------------------------------------------------------------------ #
    # Lifecycle                                                          #
    # ------------------------------------------------------------------ #
    def _run_server(self):
        raise NotImplementedError("removed by slim: never run in any recording")

    def close(self):
        raise NotImplementedError("removed by slim: never run in any recording")


def _grpc_target(url: str) -> str:
    raise NotImplementedError("removed by slim: never run in any recording")




def _grpc_scheduler_receive_url(target, req_id, receive_url, receive_count):
    raise NotImplementedError("removed by slim: never run in any recording")


def _grpc_encode_request(target, encode_request):
    raise NotImplementedError("removed by slim: never run in any recording")


def _grpc_send_request(target, request_json):
    raise NotImplementedError("removed by slim: never run in any recording")


class EmbeddingData:
    def __init__(
        self,
        req_id,
        num_parts,
        part_idx,
        grid_dim,
        modality,
        embedding=None,
        embedding_shape=None,
        error_msg=None,
        error_code=None,
        **kwargs,
    ):
        self.req_id = req_id
        self.num_parts = num_parts
        self.part_idx = part_idx
        self.grid_dim = grid_dim
        self.modality = modality
        self.embedding = embedding
        self.send_time = None
        self.dtype = embedding.dtype if embedding is not None else None
        if embedding_shape is not None:
            self.shape = embedding_shape
        else:
            self.shape = list(embedding.shape) if embedding is not None else None
        self.cached_embedding = None
        self.error_msg = error_msg
        # Coerce to plain int: this object crosses process boundaries via
        # safe_pickle_loads, whose allowlist blocks http.HTTPStatus.
        self.error_code = int(error_code) if error_code is not None else None
        # Store additional metadata (e.g., video_timestamps for qwen3_vl)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_grid(self):
        """Get the grid dimension of the embedding, used for image/video/audio."""
        return self.grid_dim

    def get_embedding(self):
        return self.embedding

    def __repr__(self):
        return f"EmbeddingData(req_id={self.req_id}, num_parts={self.num_parts}, part_idx={self.part_idx}) error_msg={self.error_msg}"



# Modality -> (list attr name, whether to flatten grid for that list)
_MODALITY_GRID_ATTRS = {
    Modality.IMAGE: ("img_grid_thw", False),
    Modality.VIDEO: ("video_grid_thw", False),
    Modality.AUDIO: ("audio_feature_lens", True),
}
# Per-part video metadata for EPD. Tensor attrs cat on dim=0 across parts;
# others chain as lists. video_meta_attrs_for(model_type) resolves the active
# set per instance so non-MiMo runs skip the MiMo audio fields entirely.
_GENERAL_VIDEO_META_ATTRS = (
    "video_timestamps",
    "second_per_grid_ts",
)
_GENERAL_IMAGE_META_ATTRS = ("original_image_sizes",)
# MiMo-VL audio-in-video fields; appended only when model_type is MiMo.
_MIMO_VIDEO_AUDIO_META_ATTRS = (
    "video_audio_feature_lens",
    "video_audio_segment_lens_flat",
    "video_audio_per_video_num_units",
    "video_audio_embedding",
)
_VIDEO_META_TENSOR_ATTRS = ("video_audio_feature_lens", "video_audio_embedding")


def video_meta_attrs_for(model_type: Optional[str]) -> tuple:
    raise NotImplementedError("removed by slim: never run in any recording")


def _cat_grid(dims, flatten_items=False):
    raise NotImplementedError("removed by slim: never run in any recording")


class MultiModalEmbeddingData(EmbeddingData):
    def __init__(
        self,
        part_idx,
        num_parts,
        req_id,
        grid_dim,
        modality,
        embedding,
        embedding_shape,
        model_type: Optional[str] = None,
        **kwargs,
    ):
        super().__init__(
            req_id,
            num_parts,
            part_idx,
            grid_dim,
            modality,
            embedding,
            embedding_shape,
            **kwargs,
        )
        self.video_meta_attrs = video_meta_attrs_for(model_type)
        self.img_grid_thw = [None] * num_parts
        self.video_grid_thw = [None] * num_parts
        self.audio_feature_lens = [None] * num_parts
        for attr in _GENERAL_IMAGE_META_ATTRS:
            setattr(self, attr, [None] * num_parts)
        self.modality_list = [
            modality if part_idx == i else None for i in range(num_parts)
        ]
        self.ready_list = [i == part_idx for i in range(num_parts)]
        self.embedding_list = [
            embedding if i == part_idx else None for i in range(num_parts)
        ]
        self.embedding_shape_list = [
            embedding_shape if i == part_idx else None for i in range(num_parts)
        ]
        for attr in self.video_meta_attrs:
            setattr(self, attr, [None] * num_parts)

        self._set_part_grid(part_idx, modality, self.get_grid())
        if modality == Modality.VIDEO:
            self._set_video_meta_for_part(part_idx, kwargs)
        if modality == Modality.IMAGE:
            self._set_image_meta_for_part(part_idx, kwargs)

    def _set_image_meta_for_part(self, part_idx, source):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _set_part_grid(self, part_idx, modality, grid):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _set_video_meta_for_part(self, part_idx, source):
        raise NotImplementedError("removed by slim: never run in any recording")


    def __repr__(self):
        return f"MultiModalEmbeddingData(req_id={self.req_id}, num_parts={self.num_parts}, part_idx={self.part_idx}, modality={self.modality})"

    def get_embedding(self, is_concat=False):
        raise NotImplementedError("removed by slim: never run in any recording")

    @property
    def ready(self):
        return sum(self.ready_list) == self.num_parts


    def add(self, embedding_data: EmbeddingData):
        raise NotImplementedError("removed by slim: never run in any recording")


class WaitingImageRequestStatus(IntEnum):
    FAIL = -1
    PENDING = 0
    SUCCESS = 1
    TIMEOUT = -2


def _select_mm_processor_prompt(recv_req, mm_processor):
    raise NotImplementedError("removed by slim: never run in any recording")


def create_part_req_id(original_req_id: str, part_idx: int) -> str:
    """Create a unique part request ID by appending part index suffix."""
    return f"{original_req_id}_local_part_{part_idx}"


def extract_original_req_id(part_req_id: str) -> str:
    raise NotImplementedError("removed by slim: never run in any recording")


def calculate_modality_num_parts(modalities, num_items_assigned):
    raise NotImplementedError("removed by slim: never run in any recording")


# For zmq_to_scheduler
class WaitingImageRequest:
    def __init__(
        self,
        rid: str,
        recv_req: TokenizedGenerateReqInput,
        mm_processor,
        encoder_urls,
        model_type,
        host_name,
        receive_count,
        zmq_context=None,
        embedding_port=None,
    ):
        self.rid = rid
        self.recv_req = recv_req
        self.mm_inputs = None
        self.error = None
        self.thread = None
        self.mm_processor = mm_processor
        self.encoder_urls = encoder_urls
        self.model_type = model_type
        self.host_name = host_name
        self.receive_count = receive_count
        self.num_items_assigned = recv_req.num_items_assigned
        self.zmq_context = zmq_context
        if embedding_port is None:
            if self.zmq_context is None:
                raise ValueError("zmq_context is required for a per-request socket")
            self.embedding_port, self.recv_socket = get_zmq_socket_on_host(
                self.zmq_context, zmq.PULL, host=host_name
            )
        else:
            self.embedding_port = embedding_port
            self.recv_socket = None
        logger.info(f"Waiting for input {self.embedding_port = }")
        self.recv_embedding_data = None
        # ok=1 pending=0 fail=-1
        self.status = WaitingImageRequestStatus.PENDING
        self.error_msg = None
        self.error_code = None
        self.start_time = time.time()

    def send_encode_request(self):
        raise NotImplementedError("removed by slim: never run in any recording")




    def _cleanup_gpu_buffer(self):
        pass


class WaitingImageRequestGrpc(WaitingImageRequest):
    def send_encode_request(self):
        raise NotImplementedError("removed by slim: never run in any recording")


class WaitingImageRDMARequest(WaitingImageRequest):
    def __init__(
        self,
        rid,
        recv_req,
        mm_processor,
        encoder_urls,
        host_name,
        receive_count,
        zmq_context,
        embeddings_engine,
        dtype,
        gpu_id=0,
        model_type: Optional[str] = None,
        embedding_pool=None,
        embedding_port=None,
    ):
        super().__init__(
            rid=rid,
            recv_req=recv_req,
            mm_processor=mm_processor,
            encoder_urls=encoder_urls,
            model_type=model_type,
            host_name=host_name,
            receive_count=receive_count,
            zmq_context=zmq_context,
            embedding_port=embedding_port,
        )
        self.embeddings_engine = embeddings_engine
        self.dtype = dtype
        self.gpu_id = gpu_id
        self.embeddings_buffer = None
        self.embedding_pool = embedding_pool
        self._buffer_from_pool = False
        self._pool_slot_id: Optional[int] = None

    def send_encode_request(self):
        raise NotImplementedError("removed by slim: never run in any recording")



    async def _check_encoder_responses(self, responses, endpoint: str, on_error=None):
        raise NotImplementedError("removed by slim: never run in any recording")




def _sort_responses_and_compute_total_bytes(response_json_list, total_num_parts):
    raise NotImplementedError("removed by slim: never run in any recording")


class MooncakeEmbeddingPool:
    """Persistent GPU buffer pool registered once with the Mooncake engine.

    Allocator: first-fit on a free-segment list with 256-byte alignment.
    `alloc()` blocks on a Condition when the pool is full and resumes once
    a peer `release()`s a slot. Each successful alloc returns a slot_id
    that must be passed back to release() when the consumer is done with
    the buffer (after RDMA write completes and the data has been read).
    """

    _ALIGN = 256

    def __init__(self, engine, gpu_id: int, size_bytes: int):
        self.engine = engine
        self.gpu_id = gpu_id
        self.size_bytes = size_bytes
        self.buffer = torch.empty(
            size_bytes, dtype=torch.uint8, device=f"cuda:{gpu_id}"
        )
        self.base = self.buffer.data_ptr()
        self.engine.register(self.base, self.buffer.nbytes)
        self._segments_free: List[Tuple[int, int]] = [(0, size_bytes)]
        self._inflight: Dict[int, Tuple[int, int]] = {}
        self._next_slot_id = 0
        self._total_inflight = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        logger.info(
            f"MooncakeEmbeddingPool registered: gpu={gpu_id}, "
            f"size={size_bytes // (1024 * 1024)}MB, base=0x{self.base:x}"
        )

    def alloc(
        self, nbytes: int, timeout: float = 60.0
    ) -> Optional[Tuple[torch.Tensor, int, int]]:
        raise NotImplementedError("removed by slim: never run in any recording")


    def release(self, slot_id: int) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")



def _slice_embedding_buffer(raw_buffer, embedding_data, dtype):
    raise NotImplementedError("removed by slim: never run in any recording")


def _view_pool_buffer_by_modality(raw_buffer, embedding_data, dtype):
    raise NotImplementedError("removed by slim: never run in any recording")


def _determine_tensor_transport_mode(server_args):
    raise NotImplementedError("removed by slim: never run in any recording")


class MMReceiverBase(ABC):
    def __init__(
        self,
        server_args: ServerArgs,
        dtype: Optional[torch.dtype] = None,
        hf_config: Optional[PretrainedConfig] = None,
        pp_rank: Optional[int] = None,
        tp_rank: Optional[int] = None,
        tp_group: Optional[GroupCoordinator] = None,
        scheduler: Optional["Scheduler"] = None,
        encode_urls: Optional[List[str]] = None,
    ):
        self.context = zmq.asyncio.Context(20)
        # Scheduler-side receive is polled synchronously. Keep one regular ZMQ
        # context alive for the process instead of creating a temporary context
        # whose destruction also closes its per-request socket.
        self.scheduler_context = zmq.Context()
        self.encoder_transfer_backend = server_args.encoder_transfer_backend
        # When ``encode_urls`` is shared with an :class:`EncoderBootstrapServer`
        # (tokenizer manager process), it grows / shrinks in place as encoders
        # register or unregister; the receiver always sees the current set.
        # When None (e.g. in a scheduler subprocess that has no in-process
        # bootstrap), fall back to a snapshot of the static --encoder-urls.
        self.encode_urls: List[str] = (
            encode_urls if encode_urls is not None else list(server_args.encoder_urls)
        )
        self.recv_timeout = envs.SGLANG_ENCODER_RECV_TIMEOUT.get()
        self.host = get_local_ip_auto(server_args.host)
        self.pp_rank = pp_rank
        self.tp_rank = tp_rank
        self.tp_size = server_args.tp_size
        self.tp_group = tp_group
        self.nnodes = server_args.nnodes
        self.hostname = get_local_ip_auto()
        self.waiting_list: List[WaitingImageRequest] = []
        self.waiting_by_rid: Dict[str, WaitingImageRequest] = {}
        self.scheduler_embedding_port = None
        self.scheduler_recv_socket = None
        if (
            self.encoder_transfer_backend == "zmq_to_scheduler"
            and scheduler is not None
        ):
            (
                self.scheduler_embedding_port,
                self.scheduler_recv_socket,
            ) = get_zmq_socket_on_host(
                self.scheduler_context, zmq.PULL, host=self.hostname
            )
            logger.info(
                "Scheduler TP rank %s reuses ZMQ embedding port %s",
                self.tp_rank,
                self.scheduler_embedding_port,
            )
        self.scheduler = scheduler
        self.gpu_id = scheduler.ps.gpu_id if scheduler is not None else 0
        self.wait_timeout = envs.SGLANG_ENCODER_RECV_TIMEOUT.get()

        self.model_type = (
            getattr(hf_config, "model_type", "").lower()
            if hf_config is not None
            else None
        )
        if self.encoder_transfer_backend == "mooncake":
            self.dtype = dtype
            self.embeddings_engine = get_mooncake_transfer_engine()
            if self.embeddings_engine is None:
                from sglang.srt.distributed.device_communicators.mooncake_transfer_engine import (
                    init_mooncake_transfer_engine,
                )

                self.embeddings_engine = init_mooncake_transfer_engine(
                    hostname=self.host,
                    ib_device=(
                        server_args.disaggregation_ib_device
                        or server_args.mooncake_ib_device
                    ),
                )
            self.embeddings_buffer = dict()
            self.embedding_pool = None
            pool_mb = envs.SGLANG_EMBEDDING_POOL_SIZE_MB.get()
            if pool_mb and pool_mb > 0 and scheduler is not None:
                try:
                    self.embedding_pool = MooncakeEmbeddingPool(
                        self.embeddings_engine, self.gpu_id, pool_mb * 1024 * 1024
                    )
                except Exception:
                    logger.exception(
                        "Failed to allocate MooncakeEmbeddingPool, "
                        "falling back to per-request register"
                    )
                    self.embedding_pool = None
            if hf_config is not None:
                self._init_mm_processor(server_args, hf_config)
        elif self.encoder_transfer_backend == "zmq_to_scheduler":
            if hf_config is not None:
                self._init_mm_processor(
                    server_args,
                    hf_config,
                    model_config=(
                        getattr(self.scheduler, "model_config", None)
                        if self.scheduler is not None
                        else None
                    ),
                )

    def _init_mm_processor(
        self,
        server_args: "ServerArgs",
        hf_config: "PretrainedConfig",
        model_config=None,
    ):
        raise NotImplementedError("removed by slim: never run in any recording")

    @abstractmethod
    def process_waiting_requests(self, recv_reqs):
        pass

    async def recv_mm_data(
        self, request_obj, mm_processor, prompt, need_wait_for_mm_inputs=True
    ):
        raise NotImplementedError("removed by slim: never run in any recording")



    def send_encode_request(self, obj, time_stats_json=None):
        self._send_encode_request(obj, time_stats_json=time_stats_json)

    def _send_encode_request(self, obj, time_stats_json=None):
        raise NotImplementedError("removed by slim: never run in any recording")


    # For zmq_to_scheduler

    def _process_waiting_requests(self, recv_reqs, waiting_cls, **extra_kwargs):
        raise NotImplementedError("removed by slim: never run in any recording")


    def create_req(self, recv_req: TokenizedGenerateReqInput):
        raise NotImplementedError("removed by slim: never run in any recording")

    async def allocate_embedding_buffer(self, req_id, total_bytes):
        raise NotImplementedError("removed by slim: never run in any recording")

    def _assign_items_by_modality(
        self, mm_data, encoder_num, random_shuffle=True
    ) -> Dict:
        raise NotImplementedError("removed by slim: never run in any recording")









_MM_RECEIVER_BY_MODE = {
    
}


def create_mm_receiver(
    server_args: ServerArgs,
    dtype: Optional[torch.dtype] = None,
    hf_config: Optional[PretrainedConfig] = None,
    pp_rank: Optional[int] = None,
    tp_rank: Optional[int] = None,
    tp_group: Optional[GroupCoordinator] = None,
    scheduler: Optional["Scheduler"] = None,
    transport_mode: Optional[str] = None,
    encode_urls: Optional[List[str]] = None,
):
    raise NotImplementedError("removed by slim: never run in any recording")
