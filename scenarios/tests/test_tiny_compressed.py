"""The tiny channel-scaled checkpoints (models/tiny-dsv3-ct-fp8.json: compressed-tensors FP8;
models/tiny-dsv3-w8a8-int8.json: sglang's W8A8 INT8) against what sglang 0.5.17 reads:
CompressedTensorsConfig's groups and `ignore` (compressed_tensors/utils.py, which W8A8Int8Config shares),
a per-channel float32 `weight_scale` (out, 1) with no input_scale (dynamic per-token activations), and the
DeepSeek loader that concatenates q_a_proj's and kv_a_proj_with_mqa's channel scales. CPU only, no torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scenarios import tiny_compressed as ct
from scenarios import tiny_model as tm
from scenarios.tests.test_tiny_model import SMALL, expected_tensors

MODELS = Path(tm.__file__).parent / "models"
SCENARIO = Path(tm.__file__).parent / "dsv3_ct_fp8_tp1.toml"


def base_config(name: str = "tiny-dsv3-ct-fp8") -> dict:
    return json.loads((MODELS / f"{name}.json").read_text())


def expected_compressed(cfg: dict, weight_dtype: str = "F8_E4M3") -> dict[str, tuple[str, tuple[int, ...]]]:
    """The block-FP8 tensor list with each 128x128 weight_scale_inv replaced by a scale per output row
    (and each FP8 weight by `weight_dtype`)."""
    out = {}
    for name, (dtype, shape) in expected_tensors(cfg).items():
        if name.endswith(".weight_scale_inv"):
            lin = name[: -len(".weight_scale_inv")]
            out[lin + ".weight_scale"] = ("F32", (out[lin + ".weight"][1][0], 1))
        else:
            out[name] = (weight_dtype if dtype == "F8_E4M3" else dtype, shape)
    return out


@pytest.fixture(scope="module")
def tensors(tmp_path_factory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("tiny-ct")
    small = {**SMALL, "n_routed_experts": 8, "n_group": 4, "topk_group": 2}
    tm.write_checkpoint(out, base_config(), overrides=small, tokenizer_vocab_size=600)
    return tm.read_safetensors(out / "model.safetensors")


def test_only_the_compressed_config_is_compressed_fp8_and_its_scenario_names_it():
    assert ct.is_compressed_fp8(base_config()["quantization_config"])
    for other in ("tiny-dsv3-fp8", "tiny-dsv3-modelopt-fp8", "tiny-dsv3-w4afp8", "tiny-dsv2-bf16"):
        assert not ct.is_compressed_fp8(json.loads((MODELS / f"{other}.json").read_text()).get("quantization_config"))
    assert '"--quantization", "compressed-tensors"' in SCENARIO.read_text()
    assert 'model = "tiny-dsv3-ct-fp8"' in SCENARIO.read_text()


def test_ignore_keeps_gates_and_heads_and_quantises_every_projection():
    ignore = base_config()["quantization_config"]["ignore"]
    for name in ("lm_head", "model.layers.2.mlp.gate", "model.layers.3.eh_proj", "model.layers.3.shared_head.head"):
        assert ct.compressed_excluded(name, ignore), name
    for name in ("model.layers.0.self_attn.q_a_proj", "model.layers.1.self_attn.kv_b_proj",
                 "model.layers.1.mlp.experts.7.gate_proj", "model.layers.2.mlp.gate_up_proj",
                 "model.layers.1.mlp.shared_experts.down_proj", "model.layers.0.mlp.gate_proj"):
        assert not ct.compressed_excluded(name, ignore), name


def test_layout_has_a_channel_scale_per_fp8_projection_and_no_input_scale():
    cfg = dict(base_config(), vocab_size=4096)
    got = {n: (d, tuple(s)) for n, d, s in tm.checkpoint_layout(cfg)}
    assert got == expected_compressed(cfg)
    assert got["model.layers.1.self_attn.kv_b_proj.weight_scale"] == ("F32", (16 * 256, 1))
    assert not any(n.endswith(("input_scale", "weight_scale_inv")) for n in got)


def test_written_weights_dequantise_per_channel(tensors):
    for lin in ("model.layers.0.self_attn.q_a_proj", "model.layers.1.mlp.experts.3.down_proj"):
        q, scale = tensors[f"{lin}.weight"].astype(np.float32), tensors[f"{lin}.weight_scale"]
        assert scale.shape == (q.shape[0], 1) and (scale > 0).all()
        assert np.allclose(np.abs(q).max(axis=1), 448.0)  # each row's largest weight maps to e4m3's max
    a, b = tensors["model.layers.0.self_attn.q_a_proj.weight_scale"], tensors[
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale"]
    assert np.concatenate([a, b]).shape[1] == 1  # sglang's loader concatenates them for the fused projection


def test_channel_quantisation_round_trips():
    w = np.random.default_rng(0).standard_normal((6, 32)).astype(np.float32) * np.arange(1, 7)[:, None]
    q, scale = ct.quantize_fp8_channel(w)
    assert np.allclose(q.astype(np.float32) * scale, w, rtol=0.07, atol=1e-6)


def test_w8a8_int8_is_the_same_layout_with_int8_weights(tmp_path):
    quant = base_config("tiny-dsv3-w8a8-int8")["quantization_config"]
    assert ct.is_w8a8_int8(quant) and not ct.is_compressed_fp8(quant)
    assert not ct.is_w8a8_int8(base_config()["quantization_config"])
    cfg = dict(base_config("tiny-dsv3-w8a8-int8"), vocab_size=4096)
    got = {n: (d, tuple(s)) for n, d, s in tm.checkpoint_layout(cfg)}
    assert got == expected_compressed(cfg, "I8")
    small = {**SMALL, "n_routed_experts": 8, "n_group": 4, "topk_group": 2}
    tm.write_checkpoint(tmp_path, base_config("tiny-dsv3-w8a8-int8"), overrides=small, tokenizer_vocab_size=600)
    tensors = tm.read_safetensors(tmp_path / "model.safetensors")
    lin = "model.layers.1.mlp.experts.5.up_proj"
    q, scale = tensors[f"{lin}.weight"], tensors[f"{lin}.weight_scale"]
    assert q.dtype == np.int8 and scale.shape == (q.shape[0], 1)
    assert (np.abs(q.astype(np.int32)).max(axis=1) == ct.INT8_MAX).all()  # each row's largest weight maps to 127
    assert '"--quantization", "w8a8_int8"' in (Path(tm.__file__).parent / "dsv3_w8a8_int8_tp1.toml").read_text()


def test_int8_channel_quantisation_round_trips():
    w = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32) * np.arange(1, 6)[:, None]
    q, scale = ct.quantize_int8_channel(w)
    assert np.abs(q.astype(np.float32) * scale - w).max() <= scale.max() / 2 + 1e-6
