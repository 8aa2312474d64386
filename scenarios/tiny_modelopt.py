"""NVIDIA ModelOpt FP8 layout of the tiny model (quant_method "modelopt", quant_algo "FP8").

A ModelOpt FP8 export quantises every nn.Linear not in its `ignore` list per tensor: float8_e4m3fn
weight, float32 scalar `weight_scale` (w ~= q * weight_scale) and a static float32 scalar
`input_scale` (activations are quantised as x / input_scale). Linears that read the same input
share both scales, as ModelOpt's export unifies them for fusion. sglang relies on that for
DeepSeek: its loader fuses q_a_proj and kv_a_proj_with_mqa and, for scalar scales, keeps only
q_a_proj's (deepseek_weight_loader.py, "shape == torch.Size([])").

Part of the tiny checkpoint generator (scenarios/tiny_model.py); pure numpy.
"""

from __future__ import annotations

import re

import numpy as np

from scenarios.tiny_quant import FP8, FP8_MAX

# Static activation scale of every quantised linear: inputs up to 0.05 * 448 = 22.4 in magnitude
# are representable; the tiny model's linear inputs are RMS-normalised or branch outputs of RMS
# ~1 (amax well below that), and e4m3 stays normal (3 mantissa bits) down to 0.05 * 2**-6 ~ 8e-4.
MODELOPT_INPUT_SCALE = 0.05

# Linears fused by sglang's loader or MoE layer: (first, second) read the same input.
_FUSED_PAIRS = (("q_a_proj", "kv_a_proj_with_mqa"), ("gate_proj", "up_proj"))


def is_modelopt_fp8(quant: dict | None) -> bool:
    """True for a config.json quantization_config that sglang parses as ModelOpt FP8
    (ModelConfig._parse_modelopt_quant_config: quant_method "modelopt", "FP8" in quant_algo)."""
    return bool(quant) and quant.get("quant_method") == "modelopt" and "FP8" in (quant.get("quant_algo") or "")


def modelopt_excluded(prefix: str, ignore: list[str]) -> bool:
    """Whether module `prefix` stays unquantised: sglang's ModelOptQuantConfig.is_layer_excluded
    (glob `*`, whole prefix or any one dotted part) without its fused-name and VLM special cases."""
    for pattern in ignore:
        regex = pattern.replace(".", r"\.").replace("*", ".*")
        if re.fullmatch(regex, prefix) or any(re.fullmatch(regex, part) for part in prefix.split(".")):
            return True
    return False


def fusion_partner(linear: str) -> str | None:
    """The linear that shares `linear`'s scales (same input, fused by sglang), or None."""
    head, _, last = linear.rpartition(".")
    for a, b in _FUSED_PAIRS:
        if last in (a, b):
            return f"{head}.{b if last == a else a}"
    return None


def quantize_fp8_tensor(w: np.ndarray, shared_with: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-tensor FP8 (e4m3): scale = amax / 448, q = clip(w / scale), amax = max|w| or, given the
    fusion partner's weights `shared_with`, the max over both (so both get the same scale).

    Returns (q float8_e4m3fn, scale float32 0-d) with w ~= q * scale."""
    w = np.asarray(w, np.float32)
    amax = float(np.abs(w).max())
    if shared_with is not None:
        amax = max(amax, float(np.abs(shared_with).max()))
    scale = np.float32(max(amax, 1e-12)) / np.float32(FP8_MAX)
    q = np.clip(w / scale, -FP8_MAX, FP8_MAX).astype(FP8)
    return q, np.array(scale, np.float32)


def hf_quant_config(quant: dict) -> dict:
    """hf_quant_config.json as ModelOpt writes it beside config.json (the nested form that
    ModelOptFp8Config.from_config falls back to: quantization.quant_algo / exclude_modules)."""
    return {
        "producer": quant.get("producer", {"name": "modelopt"}),
        "quantization": {"quant_algo": quant["quant_algo"], "kv_cache_quant_algo": quant.get("kv_cache_quant_algo"),
                         "exclude_modules": list(quant.get("ignore", []))},
    }
