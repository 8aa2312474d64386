"""Environment switches whose code the slimmed tree does not hold: each with why, and whether the
launch refuses it.

No recording sets these variables, and the plan cut (or stubbed) what they switch on. `slim check`
reads `envs.NAME.get()` and `get_bool_env_var("NAME")` tests (and module-level names bound to one
such read) like launch-flag tests (slim/flag_guards.py), and fails on a stub or cut module behind a
switch not listed here. A listed switch either is refused at launch (`refuse`: the parser exits
naming it, as for a removed flag, when it is set to anything but upstream's default) or reaches its
code only with a model or platform the front door already refuses (`refuse` False: the reason says
which). Defaults as in upstream's srt/environ.py (line given).
"""

from __future__ import annotations

from dataclasses import dataclass

OFF_VALUES = ("", "0", "false", "no", "off")  # how EnvBool(False) / EnvInt(0) / EnvStr("") read unset


@dataclass(frozen=True)
class Switch:
    feature: str
    reason: str
    refuse: bool
    default: tuple[str, ...] = OFF_VALUES  # the spellings of upstream's default, lower-cased


SWITCHES = {
    "SGLANG_VIT_ENABLE_CUDA_GRAPH": Switch(
        "CUDA graphs for vision encoders (srt/environ.py:951)",
        "multimodal: DeepSeek V2/V3/R1 take text only", True),
    "SGLANG_MM_BUFFER_SIZE_MB": Switch(
        "the multimodal feature buffer (srt/environ.py:949)", "multimodal: DeepSeek V2/V3/R1 take text only", True),
    "SGLANG_EXTERNAL_MM_PROCESSOR_PACKAGE": Switch(
        "external multimodal processor packages (srt/environ.py:1050)",
        "multimodal: DeepSeek V2/V3/R1 take text only", True),
    "SGLANG_TEST_SCRIPTED_RUNTIME": Switch(
        "upstream's scripted test runtime (srt/environ.py:467)",
        "it hooks upstream's scripted test runtime (sglang/test/scripted_runtime), which the slimmed tree "
        "does not ship", True),
    "SGLANG_EXPERIMENTAL_CPP_RADIX_TREE": Switch(
        "the experimental C++ radix tree (srt/environ.py:440)",
        "experimental and off by default; its module is off the surface in slim/policy.toml", True),
    "SGLANG_EXPERIMENTAL_LORA_OPTI": Switch(
        "the experimental TRT-LLM LoRA fast path (srt/environ.py:645)",
        "LoRA itself is removed from this tree (--enable-lora is refused)", True),
    "SGLANG_USE_AITER": Switch(
        "AMD's aiter kernels (srt/environ.py:575)",
        "AMD ROCm only: upstream ands it with is_hip() wherever it reads it", False),
    "SGLANG_OPT_BF16_FP32_GEMM_ALGO": Switch(
        "the BF16xFP32 GEMM algorithm of DeepSeek V4's attention kernels (srt/environ.py:1249)",
        "read only in kernels/ops/attention/dsv4/gemm.py, which DeepSeek V2/V3/R1 do not run", False,
        ("cublas",)),
    "SGLANG_DSA_FUSE_TOPK": Switch(
        "the fused DSA top-k (srt/environ.py:148, on by default)",
        "its code serves DeepSeek Sparse Attention (V3.2) models only, not V2/V3/R1", False),
    "SGLANG_ZBAL_LOCAL_MEM_SIZE": Switch(
        "the Ascend zbal memory pool (srt/environ.py:1068)",
        "its code initialises Ascend NPU memory (hardware_backend/npu), not NVIDIA", False),
}


def front_door_env(message) -> dict[str, tuple[tuple[str, ...], str]]:
    """NAME -> (the spellings of its default, the refusal message) for the switches the launch refuses;
    `message(feature, reason)` words it as slim/surface's refusals are worded."""
    return {name: (s.default, message(s.feature, s.reason)) for name, s in sorted(SWITCHES.items()) if s.refuse}
