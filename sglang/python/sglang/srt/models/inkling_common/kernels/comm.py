from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import torch

from sglang.srt.environ import envs
from sglang.srt.runtime_context import get_exec
from sglang.srt.utils import is_cuda

if TYPE_CHECKING:
    from sglang.srt.distributed.parallel_state import GroupCoordinator


# v4 (full one-shot) is out-of-place and drops the exit barrier, so it needs a
# double-buffered input. We carve three regions out of the tail of the enlarged
# comm.buffer -- two rotating input buffers (A/B) + one output -- so a region is
# only reused two ARs later, separated by the intervening AR's entry barrier
# (capture-safe: the A/B alternation bakes into the graph). Region size covers a
# few decode rows at hidden=6144; v4 only fires for num_tokens <= 2.
#
# SAFETY INVARIANT: the reuse-distance-2 argument requires the v4 AR sequence to
# alternate A,B,A,B *globally* -- across forwards, and across graph replays. That
# holds because every forward issues an even number of v4 ARs (attn + MLP per
# layer), so each captured graph starts and ends on opposite regions and replays
# stay aligned with each other and with eager forwards. If a forward could ever
# issue an ODD number of v4 ARs (e.g. a layer taking a reduce-scatter path at
# num_tokens <= 2), a replay boundary would put the same region in consecutive
# ARs and a lagging peer could still be multicast-reading it -- audit this before
# changing which layers all-reduce at decode.
_INKLING_AR_V4_REGION = 16 * 6144  # elems; 16B-aligned (mult of 8)

# v5 (push one-shot) needs a per-rank staging slot on every GPU: two rotating
# staging buffers of world*_INKLING_AR_V5_REGION elems (A/B, same reuse-distance-2
# argument and SAFETY INVARIANT as v4 above -- v5's single barrier plays the
# entry barrier's role) plus one local output region. Sized to cover the
# custom-kernel decode band (<=96 rows at hidden=6144) plus the fused
# target-verify chain (bs*draft_token_num <= 144 rows).
_INKLING_AR_V5_REGION = 160 * 6144  # elems; 16B-aligned (mult of 8)

# The custom kernels reduce one 16B vector (8 bf16 elems) at a time and their
# validate() rejects a num_items that isn't a multiple of this. torch symm-mem
# only enforces 4B alignment, so a non-vector bf16 size (e.g. [1, 2]) must fall
# back to torch multimem instead of hitting the kernel's hard check. (For Inkling
# proper this never bites -- hidden=6144 is a multiple of 8 -- but the utility
# is general.)
_INKLING_AR_VEC = 8

# Fused {AR + scattered sconv} OUT region (elems): the extend kernel broadcasts
# the post-conv [T, H] here (out-of-place -- the conv taps re-read the pristine
# input partials). ONE region suffices (no A/B): the kernel keeps BOTH
# barriers, so the next fused call's ENTRY barrier proves every peer's
# consumers already read the previous OUT. Sized to the chunked-prefill
# ceiling at hidden=6144.
_INKLING_AR_SSCONV_OUT_REGION = 16384 * 6144  # max_prefill_tokens x hidden

# World sizes with torch-multimem NVLink support; the symm-mem fast path (and
# with it the custom kernels) is only taken for these.
_INKLING_AR_WORLD_SIZES = (4, 6, 8)


class _InklingArResources(msgspec.Struct):
    """Per-group custom-AR resources: barrier flags/state + comm.buffer peer and
    multicast pointers + v4 double-buffer region offsets + rotation index."""

    rank: int
    world: int
    buffer_ptrs_dev: int
    multicast_ptr: int
    flag_ptrs_dev: int
    state_ptr: int
    v4_in: tuple[int, int]  # (A, B) input region starts (elems)
    v4_out: int  # output region start (elems)
    v5_in: tuple[int, int]  # (A, B) push-staging region starts (elems)
    v5_out: int  # v5 output region start (elems)
    ssconv_out: int  # fused {AR + scattered sconv} OUT region start (elems)
    v4_cur: int = 0  # rotation index, flips per v4 AR
    v5_cur: int = 0  # rotation index, flips per v5 AR
    refs: tuple = ()  # keep-alive: (flags, state, hdl, hflags)


# Lazily-built per-group resources, keyed by group name. Built once on the
# first eager call (before any capture). comm.buffer itself is enlarged at
# communicator init (a normal, non-inference tensor) so producer GEMMs can
# write into it -- including v4's input regions.
_INKLING_AR_CACHE: dict[str, _InklingArResources] = {}












# Fused decode {MoE AR -> mlp_sconv -> attn_norm} band: bounded by the v5
# staging region size and by one per-block-barrier slot per token row.
_INKLING_AR_FUSED_MAX_TOKENS = 96
# Target-verify band: T = batch * draft_token_num (144 at bs=16, Q=9), bounded
# by the (enlarged) staging region rows and the per-block barrier slots.
_INKLING_AR_FUSED_MAX_TOKENS_VERIFY = 160


# --- fused-AR shared-expert partials hand-off -------------------------------
#
# InklingMoE.forward(reduce=False) produces {routed partials, shared partials}.
# Pre-adding them costs one full [T, H] kernel per MoE layer; the custom AR
# kernels can instead fold the shared term for free (v5-family register fold at
# the push). The partials
# tensor must stay a bare tensor across the layer boundary (BCG narrowing,
# logging, the AttnRes loop), so the shared tensor rides this per-forward
# stash: the producer deposits it, the consuming fused-AR call collects it.
# Python-trace-time only (works identically under CUDA-graph capture); the
# consumer ALWAYS drains it in the same model forward that stashed it.
_PENDING_AR_SHARED: list = []










def get_ar_buffer(
    group: GroupCoordinator,
    num_tokens: int,
    hidden: int,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    raise NotImplementedError("removed by slim: never run in any recording")


def symm_mem_all_reduce(
    input: torch.Tensor,
    group: GroupCoordinator,
    *,
    output: torch.Tensor | None = None,
    input_is_ar_buffer: bool = False,
    num_sms: int = 32,
    shared: torch.Tensor | None = None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


# --- scattered sconv (--enable-scattered-sconv) comm helpers -----------------
#
# torch symmetric-memory multimem needs NVLink multicast, which torch supports
# for world sizes {4,6,8} on cc>=9. reduce_scatter/all_gather here reuse the
# group's TorchSymmMemCommunicator buffer -- already allocated and rendezvous'd
# at init, so these one-shot NVLink collectives are CUDA-graph-safe (no
# rendezvous in forward), same as symm_mem_all_reduce. Ineligible cases fall
# back to NCCL.




def reduce_scatter_hidden(
    input: torch.Tensor,
    group: GroupCoordinator,
    *,
    input_is_ar_buffer: bool = False,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")










# Below this token count the unfused non-scattered chain {one-shot AR +
# full-width causal_conv1d + update_sconv_cache} beats the fused kernel.
# The threshold is part of the producer/consumer contract.
_INKLING_AR_FW_MIN_TOKENS = 3072




