"""Channel-scaled W8A8 layouts of the tiny model: compressed-tensors FP8 (quant_method
"compressed-tensors", format "float-quantized"), as llm-compressor's FP8_DYNAMIC recipe exports
community checkpoints, and sglang's own W8A8 INT8 (quant_method "w8a8_int8", as DeepSeek-R1's
channel-INT8 export): int8 weights, the same scales, the same `ignore` semantics.

Every Linear not in `ignore` gets a float8_e4m3fn (or int8) weight and a float32 `weight_scale` per
output channel, shape (out, 1) (w ~= q * weight_scale); activations are quantised per token at run time, so
there is no `input_scale`. `ignore` entries are module names or `re:` regexes matched from the
start of the name (compressed_tensors/utils.py check_equal_or_regex_match). sglang fuses q_a_proj
and kv_a_proj_with_mqa by concatenating their weights and channel scales (deepseek_weight_loader.py),
and requantises kv_b_proj per tensor from its channel scales (channel_quant_to_tensor_quant).

Part of the tiny checkpoint generator (scenarios/tiny_model.py); pure numpy.
"""

from __future__ import annotations

import re

import numpy as np

from scenarios import tiny_modelopt
from scenarios.tiny_quant import FP8, FP8_MAX

INT8_MAX = 127  # symmetric int8: -127..127


def is_compressed_fp8(quant: dict | None) -> bool:
    """True for a quantization_config whose every group is 8-bit float weights per channel."""
    if not quant or quant.get("quant_method") != "compressed-tensors":
        return False
    groups = quant.get("config_groups", {}).values()
    return bool(groups) and all(g["weights"]["type"] == "float" and g["weights"]["num_bits"] == 8
                                and g["weights"]["strategy"] == "channel" for g in groups)


def is_w8a8_int8(quant: dict | None) -> bool:
    """True for sglang's W8A8Int8Config: int8 weights per output channel, int8 activations per token."""
    return bool(quant) and quant.get("quant_method") == "w8a8_int8"


def compressed_excluded(name: str, ignore: list[str]) -> bool:
    """Whether module `name` stays unquantised: an exact name, or a `re:` pattern matching its start."""
    return any(re.match(entry[3:], name) if entry.startswith("re:") else entry == name for entry in ignore)


def unquantised(name: str, quant: dict | None) -> bool:
    """Whether projection `name` is written in bf16 under this quantization_config (none: every one)."""
    if not quant:
        return True
    if tiny_modelopt.is_modelopt_fp8(quant):
        return tiny_modelopt.modelopt_excluded(name, quant.get("ignore", []))
    channel_scaled = is_compressed_fp8(quant) or is_w8a8_int8(quant)
    return channel_scaled and compressed_excluded(name, quant.get("ignore", []))


def _row_scale(w: np.ndarray, qmax: float) -> tuple[np.ndarray, np.ndarray]:
    """w as float32 and its symmetric scale per output row: the row's amax / qmax, shape (out, 1)."""
    w = np.asarray(w, np.float32)
    amax = np.maximum(np.abs(w).max(axis=1, keepdims=True), np.float32(1e-12))
    return w, (amax / np.float32(qmax)).astype(np.float32)


def quantize_fp8_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel FP8 (e4m3): scale = amax of the row / 448, q = clip(w / scale).

    Returns (q float8_e4m3fn, scale float32 of shape (out, 1)) with w ~= q * scale."""
    w, scale = _row_scale(w, FP8_MAX)
    return np.clip(w / scale, -FP8_MAX, FP8_MAX).astype(FP8), scale


def quantize_int8_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: scale = amax of the row / 127, q = round(w / scale).

    Returns (q int8, scale float32 of shape (out, 1)) with w ~= q * scale."""
    w, scale = _row_scale(w, INT8_MAX)
    return np.clip(np.rint(w / scale), -INT8_MAX, INT8_MAX).astype(np.int8), scale
