"""Register the no-LoRA alias for ``experimental_sgl_marlin``."""

from sglang.srt.layers.moe.moe_runner.base import register_fused_func


