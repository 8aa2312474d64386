from __future__ import annotations

from typing import Tuple

import msgspec
import torch
import triton
import triton.language as tl

from sglang.kernels.ops.speculative.dspark.dispatch import inputs_on_cuda
from sglang.srt.utils import ceil_align


class DsparkWindowGather(msgspec.Struct, frozen=True):
    num_q: int
    bs: int
    context_lens: torch.Tensor
    req_pool_indices_per_request: torch.Tensor
    offsets: torch.Tensor
    invalid: torch.Tensor


class ComputeDsparkWindowGather:
    @classmethod
    def execute(cls, *args, **kwargs) -> DsparkWindowGather:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def torch(
        cls,
        *,
        seq_lens_casual: torch.Tensor,
        req_pool_indices_repeated: torch.Tensor,
        block_size: int,
        swa_window: int,
    ) -> DsparkWindowGather:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def triton(
        cls,
        *,
        seq_lens_casual: torch.Tensor,
        req_pool_indices_repeated: torch.Tensor,
        block_size: int,
        swa_window: int,
    ) -> DsparkWindowGather:
        raise NotImplementedError("removed by slim: never run in any recording")


class BuildDsparkSwaPageIndices:
    @classmethod
    def execute(cls, *args, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def torch(
        cls,
        *,
        req_to_token: torch.Tensor,
        full_to_swa_mapping: torch.Tensor,
        req_pool_indices_per_request: torch.Tensor,
        offsets: torch.Tensor,
        invalid: torch.Tensor,
        out_loc: torch.Tensor,
        context_lens: torch.Tensor,
        block_size: int,
        swa_window: int,
        page_index_aligned_size: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def triton(
        cls,
        *,
        req_to_token: torch.Tensor,
        full_to_swa_mapping: torch.Tensor,
        req_pool_indices_per_request: torch.Tensor,
        offsets: torch.Tensor,
        invalid: torch.Tensor,
        out_loc: torch.Tensor,
        context_lens: torch.Tensor,
        block_size: int,
        swa_window: int,
        page_index_aligned_size: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")


def compute_dspark_window_gather(
    *,
    seq_lens_casual: torch.Tensor,
    req_pool_indices_repeated: torch.Tensor,
    block_size: int,
    swa_window: int,
) -> DsparkWindowGather:
    raise NotImplementedError("removed by slim: never run in any recording")


@triton.jit
def _window_gather_kernel(
    seq_lens_casual_ptr,
    req_pool_rep_ptr,
    context_lens_ptr,
    req_pool_out_ptr,
    offsets_ptr,
    invalid_ptr,
    block_size,
    swa_window,
    W_BLOCK: tl.constexpr,
):
    i = tl.program_id(0)
    ft = i * block_size
    prefix = tl.load(seq_lens_casual_ptr + ft).to(tl.int64) - 1
    tl.store(context_lens_ptr + i, tl.minimum(prefix, swa_window).to(tl.int32))
    tl.store(req_pool_out_ptr + i, tl.load(req_pool_rep_ptr + ft))
    col = tl.arange(0, W_BLOCK)
    cmask = col < swa_window
    off = prefix - swa_window + col
    tl.store(invalid_ptr + i * swa_window + col, off < 0, mask=cmask)
    tl.store(offsets_ptr + i * swa_window + col, tl.maximum(off, 0), mask=cmask)


def compute_dspark_window_gather_triton(
    *,
    seq_lens_casual: torch.Tensor,
    req_pool_indices_repeated: torch.Tensor,
    block_size: int,
    swa_window: int,
) -> DsparkWindowGather:
    raise NotImplementedError("removed by slim: never run in any recording")


def build_dspark_swa_page_indices(
    *,
    req_to_token: torch.Tensor,
    full_to_swa_mapping: torch.Tensor,
    req_pool_indices_per_request: torch.Tensor,
    offsets: torch.Tensor,
    invalid: torch.Tensor,
    out_loc: torch.Tensor,
    context_lens: torch.Tensor,
    block_size: int,
    swa_window: int,
    page_index_aligned_size: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")




@triton.jit
def _swa_page_indices_kernel(
    req_to_token_ptr,
    full_to_swa_ptr,
    req_pool_ptr,
    offsets_ptr,
    out_loc_ptr,
    context_lens_ptr,
    out_ptr,
    topk_ptr,
    rt_stride,
    swa_window,
    block_size,
    target_width,
    TW_BLOCK: tl.constexpr,
):
    q = tl.program_id(0)
    i = q // block_size
    cl = tl.load(context_lens_ptr + i)
    rp = tl.load(req_pool_ptr + i).to(tl.int64)
    k = tl.arange(0, TW_BLOCK)
    kmask = k < target_width
    in_window = k < cl
    src_col = tl.minimum(tl.maximum((swa_window - cl) + k, 0), swa_window - 1)
    wmask = kmask & in_window
    off = tl.load(offsets_ptr + i * swa_window + src_col, mask=wmask, other=0).to(
        tl.int64
    )
    win_full = tl.load(req_to_token_ptr + rp * rt_stride + off, mask=wmask, other=0).to(
        tl.int64
    )
    win_swa = tl.load(full_to_swa_ptr + win_full, mask=wmask, other=-1).to(tl.int32)

    in_block = (k >= cl) & (k < cl + block_size)
    bmask = kmask & in_block
    bcol = tl.maximum(k - cl, 0)
    blk_full = tl.load(out_loc_ptr + i * block_size + bcol, mask=bmask, other=0).to(
        tl.int64
    )
    blk_swa = tl.load(full_to_swa_ptr + blk_full, mask=bmask, other=-1).to(tl.int32)

    val = tl.where(in_window, win_swa, tl.where(in_block, blk_swa, -1))
    tl.store(out_ptr + q * target_width + k, val.to(tl.int32), mask=kmask)
    tl.store(topk_ptr + q, (cl + block_size).to(tl.int32))


def build_dspark_swa_page_indices_triton(
    *,
    req_to_token: torch.Tensor,
    full_to_swa_mapping: torch.Tensor,
    req_pool_indices_per_request: torch.Tensor,
    offsets: torch.Tensor,
    out_loc: torch.Tensor,
    context_lens: torch.Tensor,
    block_size: int,
    swa_window: int,
    page_index_aligned_size: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")


class BuildBlockSeqLensCausal:
    @classmethod
    def execute(cls, *args, **kwargs) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def torch(
        cls,
        *,
        seq_lens: torch.Tensor,
        block_size: int,
        device: torch.device,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    @classmethod
    def triton(
        cls,
        *,
        seq_lens: torch.Tensor,
        block_size: int,
        device: torch.device,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")


def build_block_seq_lens_causal(
    *,
    seq_lens: torch.Tensor,
    block_size: int,
    device: torch.device,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")


@triton.jit
def _block_seq_lens_casual_kernel(
    seq_lens_ptr,
    out_ptr,
    block_size,
    n_out,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_out
    row = offs // block_size
    col = offs % block_size
    prefix = tl.load(seq_lens_ptr + row, mask=mask, other=0)
    tl.store(out_ptr + offs, (prefix + col + 1).to(tl.int32), mask=mask)


def build_block_seq_lens_causal_triton(
    *,
    seq_lens: torch.Tensor,
    block_size: int,
    device: torch.device,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
