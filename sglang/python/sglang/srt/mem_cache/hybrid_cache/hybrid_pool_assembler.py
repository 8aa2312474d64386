from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from sglang.srt.mem_cache.hicache_storage import (
    SidecarPoolSpec,
)
from sglang.srt.mem_cache.hybrid_cache.hybrid_cache_controller import (
    HybridCacheController,
)
from sglang.srt.mem_cache.memory_pool_host import (
    HostPoolGroup,
    )
from sglang.srt.mem_cache.unified_cache.component_type import ComponentType

if TYPE_CHECKING:

    from sglang.srt.mem_cache.cache_init_params import CacheInitParams
    from sglang.srt.mem_cache.hiradix_cache import HiRadixCache
    from sglang.srt.mem_cache.unified_radix_cache import UnifiedRadixCache
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)


_COMPONENT_HOST_ATTR: dict[ComponentType, tuple[str, str]] = {
    ComponentType.FULL: ("full_kv_pool_host", "_full_kv_pool_host"),
    ComponentType.SWA: ("swa_kv_pool_host", "_swa_kv_pool_host"),
    ComponentType.MAMBA: ("mamba_pool_host", "_mamba_pool_host"),
}


@dataclass
class StackBuildResult:
    host_pool_group: HostPoolGroup
    cache_controller: HybridCacheController
    component_host_pools: dict[ComponentType, Any]
    sidecars: list[SidecarPoolSpec] = field(default_factory=list)
    # Mamba state lives in req_to_token_pool, not in kvcache, so its
    # layer_transfer_counter has to be wired separately.
    register_req_to_token_counter: bool = False
    transfer_layer_num: int = 0
    pools_desc: str = ""


class StackStrategy:
    def matches(self, kvcache: Any, components: set[ComponentType]) -> bool:
        raise NotImplementedError

    def build(
        self,
        *,
        cache: UnifiedRadixCache,
        kvcache: Any,
        params: CacheInitParams,
        server_args: ServerArgs,
        load_cache_event,
        storage_backend: Optional[str] = None,
        storage_backend_extra_config: Optional[dict] = None,
        prefetch_threshold: int = 256,
        model_name: Optional[str] = None,
        enable_storage_metrics: bool = False,
    ) -> StackBuildResult:
        raise NotImplementedError


class _DeepSeekV4Strategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _DeepSeekV4Strategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _DeepSeekV4Strategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _MambaStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _MambaStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _MambaStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _SwaStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _SwaStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _SwaStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _MambaSwaStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _MambaSwaStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        attn_cp_group=None,
        attn_tp_group=None,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _MambaSwaStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _DsaStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _DsaStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _DsaStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _MiniMaxSparseStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _MiniMaxSparseStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _MiniMaxSparseStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


class _PlainKvStrategy(StackStrategy):
    def matches(self, kvcache, components):
        raise NotImplementedError('slim removed the body of _PlainKvStrategy.matches: it never ran in any recording (see sglang/REMOVED.md)')

    def build(
        self,
        *,
        cache,
        kvcache,
        params,
        server_args,
        load_cache_event,
        storage_backend=None,
        storage_backend_extra_config=None,
        prefetch_threshold=256,
        model_name=None,
        enable_storage_metrics=False,
    ):
        raise NotImplementedError('slim removed the body of _PlainKvStrategy.build: it never ran in any recording (see sglang/REMOVED.md)')


# Resolved first-to-last; _PlainKvStrategy is the catch-all fallback.
_STRATEGIES: list[StackStrategy] = [
    _DeepSeekV4Strategy(),
    _MambaStrategy(),
    _SwaStrategy(),
    _MambaSwaStrategy(),
    _DsaStrategy(),
    _MiniMaxSparseStrategy(),
    _PlainKvStrategy(),
]


def attach_hybrid_minimax_sparse_pool_to_hiradix_cache(
    radix_cache: HiRadixCache,
    params: CacheInitParams,
    server_args: ServerArgs,
    *,
    extra_config: dict,
    prefetch_threshold: int,
    enable_storage_metrics: bool,
    load_cache_event,
) -> None:
    raise NotImplementedError('slim removed the body of attach_hybrid_minimax_sparse_pool_to_hiradix_cache: it never ran in any recording (see sglang/REMOVED.md)')


def attach_hybrid_dsa_pool_to_hiradix_cache(
    radix_cache: HiRadixCache,
    params: CacheInitParams,
    server_args: ServerArgs,
    *,
    extra_config: dict,
    prefetch_threshold: int,
    enable_storage_metrics: bool,
    load_cache_event,
) -> None:
    raise NotImplementedError('slim removed the body of attach_hybrid_dsa_pool_to_hiradix_cache: it never ran in any recording (see sglang/REMOVED.md)')


