from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl


def _resolve_swa_lut(
    lut: Optional[torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, int, bool]:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_dtype(tensor: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_1d(tensor: torch.Tensor, name: str) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_2d(tensor: torch.Tensor, name: str) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_len(tensor: torch.Tensor, name: str, expected: int) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_min_len(tensor: torch.Tensor, name: str, minimum: int) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def _require_same_device(
    reference: torch.Tensor,
    reference_name: str,
    tensors: tuple[tuple[torch.Tensor, str], ...],
) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


@triton.jit
def _compute_window_start(prefix_lens, SWA_WINDOW: tl.constexpr):
    """Per-req window start: max(prefix_lens - SWA_WINDOW, 0) when SWA, else 0.
    Works for tile and scalar inputs (broadcasts via prefix_lens shape).
    """
    if SWA_WINDOW > 0:
        clipped = prefix_lens - SWA_WINDOW
        return tl.where(clipped > 0, clipped, 0)
    else:
        return prefix_lens - prefix_lens


@triton.jit
def _swa_translate_tile(raw, mask, lut_ptr, lut_len):
    """SWA-translate a tile of slot indices. Sentinels (raw < 0) are passed through unchanged.

    ``lut_len`` is the LUT's length (Python int from the host wrapper); when 0 the LUT is unused (the caller
    will only enter this branch when HAS_SWA_LUT is True, so lut_len is always > 0 in practice).
    """
    sentinel = raw < 0
    safe = tl.where(sentinel, 0, raw)
    if lut_len > 0:
        safe = tl.where(safe >= lut_len, lut_len - 1, safe)
    xlat = tl.load(lut_ptr + safe, mask=mask & (~sentinel), other=0)
    return tl.where(sentinel, raw, xlat)
