"""Quantisation of the tiny model's weights: block FP8 (e4m3) and W4AFP8's grouped int4.

Pure numpy (ml_dtypes for float8 and bf16); part of the tiny checkpoint generator
(scenarios/tiny_model.py).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

FP8_MAX = 448.0  # largest finite float8_e4m3fn
BF16 = ml_dtypes.bfloat16
FP8 = ml_dtypes.float8_e4m3fn

def quantize_fp8_block(w: np.ndarray, block: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """Per-block FP8 (e4m3) quantisation: scale = amax/448, q = clip(w/scale).

    Returns (q float8_e4m3fn [out, in], scale_inv float32 [ceil(out/bo), ceil(in/bi)]) such
    that w ~= q * scale_inv broadcast over each block."""
    bo, bi = block
    rows, cols = w.shape
    nr, nc = -(-rows // bo), -(-cols // bi)
    pad = np.zeros((nr * bo, nc * bi), np.float32) if (rows % bo or cols % bi) else None
    if pad is not None:
        pad[:rows, :cols] = w
        wp = pad
    else:
        wp = np.asarray(w, np.float32)
    blocks = wp.reshape(nr, bo, nc, bi)
    amax = np.abs(blocks).max(axis=(1, 3))
    scale = np.maximum(amax, 1e-12).astype(np.float32) / np.float32(FP8_MAX)
    q = blocks / scale[:, None, :, None]
    np.clip(q, -FP8_MAX, FP8_MAX, out=q)
    q = q.reshape(nr * bo, nc * bi)[:rows, :cols].astype(FP8)
    return q, scale.astype(np.float32)


def dequantize_fp8_block(q: np.ndarray, scale_inv: np.ndarray, block: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Inverse of quantize_fp8_block (float32)."""
    bo, bi = block
    s = np.repeat(np.repeat(scale_inv, bo, axis=0), bi, axis=1)[: q.shape[0], : q.shape[1]]
    return q.astype(np.float32) * s


INT4_GROUP = 128  # W4AFP8: one scale per row and 128 input columns (W4AFp8Config.group_size)
# W4AFP8 static activation scales (per tensor): FP8 max / scale covers the expert inputs' range.
W4_INPUT_SCALE = {"gate_proj": 0.05, "up_proj": 0.05, "down_proj": 0.02}


def quantize_int4_group(w: np.ndarray, group: int = INT4_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int4 per (row, group of input columns): scale = amax/7, q = round(w/scale) in
    [-8, 7], packed two per int8 (column 2k in the low nibble, 2k+1 in the high one).

    Returns (packed int8 [out, in/2], scale float32 [out, in/group])."""
    rows, cols = w.shape
    assert cols % group == 0 and group % 2 == 0, (w.shape, group)
    groups = np.asarray(w, np.float32).reshape(rows, cols // group, group)
    scale = np.maximum(np.abs(groups).max(axis=2), 1e-12).astype(np.float32) / np.float32(7.0)
    q = np.clip(np.rint(groups / scale[:, :, None]), -8, 7).astype(np.int8).reshape(rows, cols)
    packed = ((q[:, 1::2] << 4) | (q[:, 0::2] & 0xF)).astype(np.int8)
    return packed, scale


def dequantize_int4_group(packed: np.ndarray, scale: np.ndarray, group: int = INT4_GROUP) -> np.ndarray:
    """Inverse of quantize_int4_group (float32)."""
    low = (packed << 4).astype(np.int8) >> 4  # sign-extend the low nibble
    high = packed >> 4  # arithmetic shift sign-extends the high nibble
    q = np.empty((packed.shape[0], packed.shape[1] * 2), np.float32)
    q[:, 0::2], q[:, 1::2] = low, high
    return q * np.repeat(scale, group, axis=1)
