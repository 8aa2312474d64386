"""The committed LoRA adapter is what scenarios/lora_adapter.py writes: PEFT names and shapes that match the
tiny model's MLA projections, targets upstream's --lora-target-modules accepts, named by its scenario."""

import json

import pytest

from scenarios.lora_adapter import ADAPTER_DIR, RANK, TARGETS, adapter_specs, write_adapter
from scenarios.spec import SCENARIO_DIR, load_scenario
from scenarios.tiny_model import BASE_CONFIG_PATH
from scenarios.tiny_safetensors import read_safetensors
from slim.paths import DB
from slim.surface import load_surface

CONFIG = json.loads(BASE_CONFIG_PATH.read_text())


def test_the_committed_adapter_is_the_generated_one(tmp_path):
    write_adapter(tmp_path, CONFIG)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        regenerate = "run `python -m scenarios.lora_adapter`"
        assert (tmp_path / name).read_bytes() == (ADAPTER_DIR / name).read_bytes(), regenerate


def test_every_tensor_is_a_low_rank_factor_of_a_projection_of_the_tiny_model():
    tensors = read_safetensors(ADAPTER_DIR / "adapter_model.safetensors")
    assert sorted(tensors) == sorted(name for name, _, _ in adapter_specs(CONFIG))
    kv_b = tensors["base_model.model.model.layers.2.self_attn.kv_b_proj.lora_B.weight"]
    heads = CONFIG["num_attention_heads"]
    assert kv_b.shape == (heads * (CONFIG["qk_nope_head_dim"] + CONFIG["v_head_dim"]), RANK)
    q_a = tensors["base_model.model.model.layers.0.self_attn.q_a_proj.lora_A.weight"]
    assert q_a.shape == (RANK, CONFIG["hidden_size"]) and float(abs(q_a.astype("float32")).max()) > 0
    assert len(tensors) == 2 * len(TARGETS) * CONFIG["num_hidden_layers"]


def test_the_scenario_serves_the_adapter_on_targets_upstream_accepts():
    scenario = load_scenario("dsv3_fp8_tp1_lora")
    launch = scenario.launch_command("python3", "/m", 1)
    assert f"attn={ADAPTER_DIR}" in launch and ADAPTER_DIR.is_relative_to(SCENARIO_DIR)
    named = launch[launch.index("--lora-target-modules") + 1:]
    assert named == list(TARGETS) == json.loads((ADAPTER_DIR / "adapter_config.json").read_text())["target_modules"]
    values = set(load_surface(DB).query("kind == 'flag_value'").id)
    assert {f"flag:--lora-target-modules={t}" for t in TARGETS} <= values


@pytest.mark.parametrize("module", TARGETS)
def test_each_target_has_both_factors_in_every_layer(module):
    names = {name for name, _, _ in adapter_specs(CONFIG)}
    for layer in range(CONFIG["num_hidden_layers"]):
        for factor in ("lora_A", "lora_B"):
            assert f"base_model.model.model.layers.{layer}.self_attn.{module}.{factor}.weight" in names
