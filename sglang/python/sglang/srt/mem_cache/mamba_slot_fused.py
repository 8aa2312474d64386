"""Fused Triton kernels that clear / copy conv-state pool slots across all
conv-state tensors of a hybrid (mamba-style) pool in a single launch.

``MambaPool.clear_slots`` / ``copy_from`` otherwise loop over every conv-state
tensor (models with several short-conv streams have a handful, each a distinct
scattered-index kernel), and the speculative-decode draft worker replays that
loop across every draft head's pool — so one fresh-request / radix-COW event
fans out into many tiny launch-bound kernels on the forward stream. These
kernels fold the whole conv list into one launch.

The conv tensors are heterogeneous only in their trailing feature size and share
the leading ``[num_layers, pool_size]`` dims + dtype, so they are addressed via a
per-tensor pointer / stride / feature-length array. The kernel reads each
tensor's real ``layer_stride`` / ``slot_stride``, so it is layout-general; it
only requires the per-slot feature block to be contiguous. Temporal state
(different dtype/shape) is handled by the caller with a plain indexed op.
"""

from __future__ import annotations

from typing import List, NamedTuple

import torch
import triton

_BLOCK = 1024


class ConvSlotDescriptor(NamedTuple):
    ptr: torch.Tensor  # [T] int64 base byte-addresses
    feat: torch.Tensor  # [T] int64 per-slot feature length (elements)
    layer_stride: torch.Tensor  # [T] int64 element stride between layers
    slot_stride: torch.Tensor  # [T] int64 element stride between slots
    num_layers: int
    max_feat_blocks: int


def build_conv_slot_descriptor(tensors: List[torch.Tensor]) -> ConvSlotDescriptor:
    """Build the pool-stable addressing descriptor for a conv-tensor list.

    Requires bf16 tensors sharing the leading (num_layers, pool_size) dims with a
    contiguous per-slot feature block (the kernel reads each tensor's real
    strides, so the block may sit inside a larger strided envelope). Cache the
    result and reuse it — conv tensors don't move after allocation.
    """
    t0 = tensors[0]
    num_layers = t0.shape[0]
    device = t0.device
    ptr, feat, layer_stride, slot_stride = [], [], [], []
    max_feat = 0
    for t in tensors:
        assert t.dtype == torch.bfloat16, "fused slot ops assume bf16 conv state"
        assert t.shape[0] == num_layers, "conv tensors must share num_layers"
        assert t.device == device
        assert t[0, 0].is_contiguous(), "per-slot feature block must be contiguous"
        ptr.append(t.data_ptr())
        feat.append(t[0, 0].numel())
        layer_stride.append(t.stride(0))
        slot_stride.append(t.stride(1))
        max_feat = max(max_feat, t[0, 0].numel())
    to_i64 = lambda xs: torch.tensor(xs, dtype=torch.int64, device=device)
    return ConvSlotDescriptor(
        ptr=to_i64(ptr),
        feat=to_i64(feat),
        layer_stride=to_i64(layer_stride),
        slot_stride=to_i64(slot_stride),
        num_layers=num_layers,
        max_feat_blocks=triton.cdiv(max_feat, _BLOCK),
    )


def fused_clear_conv_slots(desc: ConvSlotDescriptor, indices: torch.Tensor):
    raise NotImplementedError('slim removed the body of fused_clear_conv_slots: it never ran in any recording (see sglang/REMOVED.md)')


def fused_copy_conv_slots(
    desc: ConvSlotDescriptor, src_indices: torch.Tensor, dst_indices: torch.Tensor
):
    raise NotImplementedError('slim removed the body of fused_copy_conv_slots: it never ran in any recording (see sglang/REMOVED.md)')
