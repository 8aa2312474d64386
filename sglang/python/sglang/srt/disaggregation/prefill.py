"""
Life cycle of a request in the prefill server

1. Bootstrap Queue
    a. Initialize a sender for each request
    b. Use the queue to store requests whose bootstrap (handshake and preallocation) has not finished
    c. Poll senders to check bootstrap state
    d. Once bootstrap is complete, move request to Waiting Queue

2. Waiting Queue
    a. Use PrefillAdder to pop requests
    b. Run forward
    c. Add the request to Inflight Queue

3. Inflight Queue
    a. Poll (non-blocking) the sender of the request
    b. Once the transfer has finished, return the request
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING


from sglang.srt.disaggregation.utils import (
    ReqToMetadataIdxAllocator,
    )
from sglang.srt.managers.schedule_batch import (
    Req,
    ScheduleBatch,
)
from sglang.srt.utils import is_npu

if TYPE_CHECKING:

    from sglang.srt.managers.scheduler import GenerationBatchResult, Scheduler

logger = logging.getLogger(__name__)

_is_npu = is_npu()


def maybe_release_metadata_buffer(
    req: Req, allocator: ReqToMetadataIdxAllocator
) -> None:
    raise NotImplementedError('slim removed the body of maybe_release_metadata_buffer: it never ran in any recording (see sglang/REMOVED.md)')


class PrefillBootstrapQueue:
    """
    Store the requests in bootstrapping
    """

class SchedulerDisaggregationPrefillMixin:
    """
    Mixin for Scheduler to handle disaggregation prefill
    """

    def process_batch_result_disagg_prefill(
        self: Scheduler,
        batch: ScheduleBatch,
        result: GenerationBatchResult,
    ) -> None:
        raise NotImplementedError('slim removed the body of SchedulerDisaggregationPrefillMixin.process_batch_result_disagg_prefill: it never ran in any recording (see sglang/REMOVED.md)')

    def maybe_send_cached_prefix_chunk(self: Scheduler, req: Req) -> None:
        # Only bootstrap-finalized requests; staging excluded.
        raise NotImplementedError('slim removed the body of SchedulerDisaggregationPrefillMixin.maybe_send_cached_prefix_chunk: it never ran in any recording (see sglang/REMOVED.md)')

