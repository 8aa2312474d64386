from __future__ import annotations

from typing import Optional

import msgspec
import torch
import triton
import triton.language as tl

from sglang.kernels.ops.speculative.dspark.dispatch import inputs_on_cuda

_BLOCK_V = 1024
_IDX_SENTINEL = tl.constexpr(2147483647)




def sample_step_tokens(
    *,
    step_logits: torch.Tensor,
    temperatures: torch.Tensor,
    greedy_mask: torch.Tensor,
    exp_noise: torch.Tensor,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


@triton.jit
def _online_partial_kernel(
    logits_ptr,
    temperatures_ptr,
    greedy_mask_ptr,
    exp_noise_ptr,
    tile_max_ptr,
    partial_key_ptr,
    partial_idx_ptr,
    V,
    stride_row,
    n_tiles,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0)
    tile = tl.program_id(1)
    offs = tile * BLOCK_V + tl.arange(0, BLOCK_V)
    mask = offs < V
    logits = tl.load(
        logits_ptr + row * stride_row + offs, mask=mask, other=float("-inf")
    ).to(tl.float32)
    temperature = tl.load(temperatures_ptr + row)
    s = logits / temperature
    tile_max = tl.max(s, axis=0)
    greedy = tl.load(greedy_mask_ptr + row) != 0
    noise = tl.load(exp_noise_ptr + row * V + offs, mask=mask, other=1.0)
    denom = tl.where(greedy, 1.0, noise)
    key = tl.exp(s - tile_max) / denom
    key = tl.where(mask, key, -1.0)
    tile_best = tl.max(key, axis=0)
    idx = tl.where(key == tile_best, offs, _IDX_SENTINEL)
    tl.store(tile_max_ptr + row * n_tiles + tile, tile_max)
    tl.store(partial_key_ptr + row * n_tiles + tile, tile_best)
    tl.store(partial_idx_ptr + row * n_tiles + tile, tl.min(idx, axis=0))


@triton.jit
def _online_combine_kernel(
    tile_max_ptr,
    partial_key_ptr,
    partial_idx_ptr,
    next_tokens_ptr,
    n_tiles,
    BLOCK_TILES: tl.constexpr,
):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK_TILES)
    mask = offs < n_tiles
    tile_max = tl.load(
        tile_max_ptr + row * n_tiles + offs, mask=mask, other=float("-inf")
    )
    keys = tl.load(partial_key_ptr + row * n_tiles + offs, mask=mask, other=-1.0)
    idxs = tl.load(
        partial_idx_ptr + row * n_tiles + offs, mask=mask, other=_IDX_SENTINEL
    )
    global_max = tl.max(tile_max, axis=0)
    rescaled = keys * tl.exp(tile_max - global_max)
    rescaled = tl.where(mask, rescaled, -1.0)
    best = tl.max(rescaled, axis=0)
    cand = tl.where(rescaled == best, idxs, _IDX_SENTINEL)
    next_token = tl.min(cand, axis=0)
    # Degenerate rows (e.g. all -inf logits) leave cand all-sentinel; clamp to 0
    # so a valid token id is emitted instead of an out-of-range 2147483647.
    next_token = tl.where(next_token == _IDX_SENTINEL, 0, next_token)
    tl.store(next_tokens_ptr + row, next_token.to(tl.int64))


def sample_step_tokens_triton(
    *,
    step_logits: torch.Tensor,
    temperatures: torch.Tensor,
    greedy_mask: torch.Tensor,
    exp_noise: torch.Tensor,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


_STACKED_WEIGHT_CACHE: dict[int, _StackedWkvWeight] = {}


class CommitKvProj:
    @classmethod
    def execute(
        cls,
        *,
        main_x: torch.Tensor,
        wkv_linears: list[torch.nn.Module],
    ) -> list[torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def torch(
        cls,
        *,
        main_x: torch.Tensor,
        wkv_linears: list[torch.nn.Module],
    ) -> list[torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def triton(
        cls,
        *,
        main_x: torch.Tensor,
        wkv_linears: list[torch.nn.Module],
    ) -> list[torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")


def commit_kv_proj(
    *,
    main_x: torch.Tensor,
    wkv_linears: list[torch.nn.Module],
) -> list[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


def commit_kv_proj_fused(
    *,
    main_x: torch.Tensor,
    wkv_linears: list[torch.nn.Module],
) -> list[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


class _StackedWkvWeight(msgspec.Struct):
    weight: torch.Tensor
    fp8_scale: Optional[torch.Tensor]








def _fused_commit_kv_proj_supported(*, wkv_linears: list[torch.nn.Module]) -> bool:
    raise NotImplementedError("removed by slim: never run in any recording")






_BLOCK = 1024


class BuildStepLocal:
    @classmethod
    def execute(cls, *args, **kwargs) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def torch(cls, *, bias: torch.Tensor, base_local: torch.Tensor) -> torch.Tensor:
        return build_step_local(bias=bias, base_local=base_local)

    @classmethod
    def triton(cls, *, bias: torch.Tensor, base_local: torch.Tensor) -> torch.Tensor:
        return build_step_local_triton(bias=bias, base_local=base_local)


def build_step_local(*, bias: torch.Tensor, base_local: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


@triton.jit
def _build_step_local_kernel(
    bias_ptr,
    base_ptr,
    out_ptr,
    org_width,
    per_partition,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    tile = tl.program_id(1)
    offs = tile * BLOCK + tl.arange(0, BLOCK)
    mask = offs < per_partition
    base = tl.load(base_ptr + row * per_partition + offs, mask=mask, other=0.0).to(
        tl.float32
    )
    bias = tl.load(
        bias_ptr + row * org_width + offs, mask=offs < org_width, other=0.0
    ).to(tl.float32)
    tl.store(out_ptr + row * per_partition + offs, base + bias, mask=mask)


def build_step_local_triton(
    *, bias: torch.Tensor, base_local: torch.Tensor
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
