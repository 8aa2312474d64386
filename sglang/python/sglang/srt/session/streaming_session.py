from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional


from sglang.srt.mem_cache.base_prefix_cache import (
    BasePrefixCache,
    DecLockRefParams,
    DecLockRefResult,
    EvictParams,
    EvictResult,
    IncLockRefResult,
    InitLoadBackParams,
    MatchPrefixParams,
    MatchResult,
)
from sglang.srt.utils.common import ceil_align

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req, ReqKvInfo


logger = logging.getLogger(__name__)


class _VirtualNode:
    """Sentinel node for streaming session requests.

    Passed to inc_lock_ref / dec_lock_ref so the cache can distinguish
    streaming-session locks (no-op) from real radix-tree locks (forwarded).
    """

    pass


@dataclass
class SessionSlot:
    """Holds KV state between streaming session turns."""

    virtual_node: _VirtualNode = field(default_factory=_VirtualNode)

    # KV pool state (None means no KV is currently held by this slot)
    req_pool_idx: Optional[int] = None
    kv_committed_len: int = 0
    kv: Optional[ReqKvInfo] = None

    # First req's radix tree node (for dec_lock_ref on session close)
    last_node: Any = None
    cache_protected_len: int = 0
    swa_uuid_for_lock: Optional[str] = None
    # components the first req skipped locking on last_node, so release dec
    # releases only what it took (may share the node with another req).
    skip_lock_node_ids: dict = field(default_factory=dict)

    # Mamba states
    mamba_pool_idx: Any = None
    mamba_ping_pong_track_buffer: Any = None
    mamba_next_track_idx: Any = None
    mamba_last_track_seqlen: Any = None
    mamba_branching_seqlen: Any = None

    @property
    def is_holding_kv(self) -> bool:
        """Whether this slot currently holds KV pool resources."""
        return self.kv is not None

        # NOTE: req_pool_idx and mamba_pool_idx are intentionally NOT cleared
        # from the slot. During chunked prefill, a request may be rejected by
        # the scheduler (e.g. budget exhausted) and retried in the next cycle.
        # Each retry calls match_prefix -> restore_to_req again, so the slot
        # must remain intact for idempotent restoration.


def _is_streaming(req: Optional[Req]) -> bool:
    raise NotImplementedError('slim removed the body of _is_streaming: it never ran in any recording (see sglang/REMOVED.md)')


class StreamingSession(BasePrefixCache):
    """Adds streaming-session KV save/restore on top of any BasePrefixCache.

    Works both as an external wrapper (``StreamingSession(RadixCache(...))``)
    and in embedded composition (``StreamingSession(inner=self)``). For the
    embedded case, the composing cache must pre-check dispatch conditions
    (``_is_streaming`` / ``find_active_slot`` / ``has_slot``) so the internal
    fall-through to ``self.inner.xxx`` never fires -- otherwise it recurses.
    """

    # -- Forward PrefixCacheTrait properties to inner cache --

    # -- Condition helpers (used by embedded-mode callers for pre-dispatch) --

    def has_slot(self, session_id: str) -> bool:
        raise NotImplementedError('slim removed the body of StreamingSession.has_slot: it never ran in any recording (see sglang/REMOVED.md)')

    # -- Try-handle entries for composition (see class docstring) --

    def find_active_slot(self, req: Req) -> Optional[SessionSlot]:
        raise NotImplementedError('slim removed the body of StreamingSession.find_active_slot: it never ran in any recording (see sglang/REMOVED.md)')

    # -- BasePrefixCache abstract methods --

    # -- Streaming entries: contract with embedded composers (e.g.
    # UnifiedRadixCache) is a uniform "try_handle_*" pattern. Each method
    # executes the streaming body if applicable and signals whether the
    # caller still needs to run its raw path.

    # -- BasePrefixCache abstract methods: thin adapters over try_handle_* --

    # -- Session lifecycle --

    # -- Internal helpers (streaming body bits) --

    # -- Pass-through methods --

    # Forward attribute access for cache-specific methods (e.g.
    # sliding_window_size, all_values_flatten, etc.)
