"""The tiny DeepSeek-V3's LoRA adapter (scenario dsv3_fp8_tp1_lora): a PEFT folder that upstream's
DeepSeek MLA LoRA serves, on every attention projection of every layer.

Upstream (srt/lora/) reads `adapter_config.json` (target_modules, r, lora_alpha) and the tensors of
`adapter_model.safetensors` by their layer number (`layers.N.`); it fuses q_a_proj with
kv_a_proj_with_mqa into the model's fused_qkv_a_proj_with_mqa, and adds the kv_b_proj delta on top of
the absorbed MLA path (deepseek_mla_correction.py). The shapes are upstream's lora/utils.py
get_hidden_dim: lora_A is (r, in), lora_B is (out, r). B is not zero (PEFT starts it at zero) so
that the adapter changes the answers. `python -m scenarios.lora_adapter` rewrites the committed folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scenarios.tiny_model import BASE_CONFIG_PATH
from scenarios.tiny_quant import BF16
from scenarios.tiny_safetensors import write_safetensors

ADAPTER_DIR = Path(__file__).parent / "configs" / "lora" / "tiny-dsv3-attn"
RANK, ALPHA = 4, 8
TARGETS = ("q_a_proj", "kv_a_proj_with_mqa", "q_b_proj", "kv_b_proj", "o_proj")


def projection_shapes(config: dict) -> dict[str, tuple[int, int]]:
    """(in, out) of each MLA attention projection."""
    heads, rope = config["num_attention_heads"], config["qk_rope_head_dim"]
    return {"q_a_proj": (config["hidden_size"], config["q_lora_rank"]),
            "kv_a_proj_with_mqa": (config["hidden_size"], config["kv_lora_rank"] + rope),
            "q_b_proj": (config["q_lora_rank"], heads * (config["qk_nope_head_dim"] + rope)),
            "kv_b_proj": (config["kv_lora_rank"], heads * (config["qk_nope_head_dim"] + config["v_head_dim"])),
            "o_proj": (heads * config["v_head_dim"], config["hidden_size"])}


def adapter_specs(config: dict) -> list[tuple[str, str, tuple[int, int]]]:
    """(name, dtype, shape) of every tensor, PEFT's names, layer by layer."""
    shapes = projection_shapes(config)
    specs = []
    for layer in range(config["num_hidden_layers"]):
        for module in TARGETS:
            fan_in, fan_out = shapes[module]
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            specs += [(f"{prefix}.lora_A.weight", "BF16", (RANK, fan_in)),
                      (f"{prefix}.lora_B.weight", "BF16", (fan_out, RANK))]
    return specs


def adapter_config(config: dict) -> dict:
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "tiny-dsv3-fp8",
            "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0, "bias": "none", "inference_mode": True,
            "target_modules": list(TARGETS)}


def write_adapter(out_dir: Path, config: dict, seed: int = 0) -> None:
    """Deterministic values: A scaled by its fan-in, B so that each delta is a few percent of an
    activation, enough to move greedy tokens of the tiny model without drowning the base weights."""
    rng = np.random.default_rng(seed)
    specs = adapter_specs(config)

    def arrays():
        for _, _, shape in specs:
            scale = 1 / np.sqrt(shape[1]) if shape[0] == RANK else 0.05
            yield (rng.standard_normal(shape, dtype=np.float32) * scale).astype(BF16)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "adapter_config.json").write_text(json.dumps(adapter_config(config), indent=1) + "\n")
    write_safetensors(out_dir / "adapter_model.safetensors", specs, arrays())


def main() -> None:
    write_adapter(ADAPTER_DIR, json.loads(BASE_CONFIG_PATH.read_text()))


if __name__ == "__main__":
    main()
