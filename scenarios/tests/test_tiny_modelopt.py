"""The tiny ModelOpt FP8 checkpoint (models/tiny-dsv3-modelopt-fp8.json) against what sglang 0.5.17
reads: ModelOptFp8Config.from_config and ModelConfig._parse_modelopt_quant_config for the config,
ModelOptFp8LinearMethod / ModelOptFp8MoEMethod.create_weights and the DeepSeek weight loader for
the tensors (layers/quantization/modelopt_quant.py, configs/model_config.py,
models/deepseek_common/deepseek_weight_loader.py). CPU only, no torch: the keys those read are
asserted here.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from scenarios import tiny_model as tm
from scenarios import tiny_modelopt as mo
from scenarios.tests.test_tiny_model import SMALL, expected_tensors

MODEL_JSON = Path(tm.__file__).parent / "models" / "tiny-dsv3-modelopt-fp8.json"
SCENARIO = Path(tm.__file__).parent / "dsv3_modelopt_fp8_tp1.toml"
_DTYPES = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "BF16": ml_dtypes.bfloat16, "F32": np.float32}


def base_config() -> dict:
    return json.loads(MODEL_JSON.read_text())


def expected_modelopt(cfg: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The block-FP8 tensor list with each 128x128 `weight_scale_inv` replaced by ModelOpt's scalar
    `weight_scale` and `input_scale` (create_weights: per-tensor parameters filled from 0-d
    checkpoint tensors, needs_scalar_to_array; the MoE's w13/w2_weight_scale and _input_scale
    take one scalar per expert and shard through FusedMoE's per-tensor loader)."""
    out = {}
    for name, spec in expected_tensors(cfg).items():
        if name.endswith(".weight_scale_inv"):
            lin = name[: -len(".weight_scale_inv")]
            out[lin + ".weight_scale"] = ("F32", ())
            out[lin + ".input_scale"] = ("F32", ())
        else:
            out[name] = spec
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-modelopt")
    small = {**SMALL, "n_routed_experts": 8, "n_group": 4, "topk_group": 2}
    tm.write_checkpoint(out, base_config(), overrides=small, tokenizer_vocab_size=600)
    return out


@pytest.fixture(scope="module")
def tensors(model_dir) -> dict[str, np.ndarray]:
    return tm.read_safetensors(model_dir / "model.safetensors")


def test_config_is_parsed_as_modelopt_fp8():
    """config.json's quantization_config in the flat form from_config reads first: "quant_algo"
    containing FP8 (else ValueError), "ignore" -> exclude_modules, no kv_cache_scheme and a null
    kv_cache_quant_algo (no FP8 KV cache method). _parse_quant_hf_config sends quant_method
    "modelopt" through _parse_modelopt_quant_config, which maps "FP8" to modelopt_fp8: the same
    name as the scenario's --quantization, so _verify_quantization accepts it as is."""
    quant = base_config()["quantization_config"]
    assert quant["quant_method"] == "modelopt" and "FP8" in quant["quant_algo"]
    assert "quant_algo" in quant and "kv_cache_scheme" not in quant and quant["kv_cache_quant_algo"] is None
    assert "weight_block_size" not in quant  # else the MLA loader takes the block-FP8 branch
    assert mo.is_modelopt_fp8(quant)
    assert not mo.is_modelopt_fp8(json.loads((MODEL_JSON.parent / "tiny-dsv3-fp8.json").read_text())
                                  ["quantization_config"])
    scenario = SCENARIO.read_text()
    assert '"--quantization", "modelopt_fp8"' in scenario and 'model = "tiny-dsv3-modelopt-fp8"' in scenario


def test_ignore_list_matches_upstream_exclusion():
    """ModelOptQuantConfig.is_layer_excluded semantics on sglang's module prefixes: the heads
    (ParallelLMHead, the NextN's `model.shared_head.head`), the NextN eh_proj (ReplicatedLinear)
    and the router gates stay unquantised; every attention projection, kv_b_proj included (so
    post_load_weights requantises it per tensor for bmm_fp8), and every MLP projection is FP8."""
    ignore = base_config()["quantization_config"]["ignore"]
    for prefix in ("lm_head", "model.shared_head.head", "model.eh_proj", "model.layers.2.mlp.gate"):
        assert mo.modelopt_excluded(prefix, ignore), prefix
    for prefix in ("model.layers.1.self_attn.kv_b_proj", "model.layers.0.self_attn.fused_qkv_a_proj_with_mqa",
                   "model.layers.0.self_attn.q_b_proj", "model.layers.0.self_attn.o_proj",
                   "model.layers.0.mlp.gate_up_proj", "model.layers.1.mlp.experts",
                   "model.layers.1.mlp.shared_experts.down_proj", "model.layers.1.mlp.gate_up_proj"):
        assert not mo.modelopt_excluded(prefix, ignore), prefix


def test_layout_matches_the_modelopt_methods_full_config():
    cfg = dict(base_config(), vocab_size=4096)
    got = {n: (d, tuple(s)) for n, d, s in tm.checkpoint_layout(cfg)}
    assert got == expected_modelopt(cfg)
    assert not any(n.endswith("weight_scale_inv") for n in got)
    assert got["model.layers.1.self_attn.kv_b_proj.weight"] == ("F8_E4M3", (16 * 256, 512))
    assert got["model.layers.1.self_attn.kv_b_proj.weight_scale"] == ("F32", ())
    assert got["model.layers.1.mlp.experts.255.up_proj.input_scale"] == ("F32", ())


def test_written_tensors_match_layout(model_dir, tensors):
    cfg = json.loads((model_dir / "config.json").read_text())
    exp = expected_modelopt(cfg)
    assert set(tensors) == set(exp)
    for name, (dtype, shape) in exp.items():
        assert tensors[name].dtype == np.dtype(_DTYPES[dtype]), name
        assert tensors[name].shape == shape, name


def test_hf_quant_config_json(model_dir):
    """The nested form ModelOpt writes beside config.json (from_config's fallback), consistent with it."""
    cfg = json.loads((model_dir / "config.json").read_text())["quantization_config"]
    hf = json.loads((model_dir / "hf_quant_config.json").read_text())
    assert hf["producer"]["name"] == "modelopt"
    assert hf["quantization"] == {"quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": cfg["ignore"]}


def test_fused_linears_share_their_scales(tensors):
    """sglang's loader fuses q_a_proj + kv_a_proj_with_mqa and keeps q_a_proj's scalar scale for
    both; gate/up become w13 (one input scale per expert). ModelOpt exports unify them."""
    for layer in (0, 1, 2):
        p = f"model.layers.{layer}."
        pairs = [("self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa")]
        owners = ["mlp"] if layer == 0 else ["mlp.shared_experts", "mlp.experts.0", "mlp.experts.7"]
        pairs += [(f"{o}.gate_proj", f"{o}.up_proj") for o in owners]
        for a, b in pairs:
            for scale in ("weight_scale", "input_scale"):
                assert float(tensors[f"{p}{a}.{scale}"]) == float(tensors[f"{p}{b}.{scale}"]), (p, a, scale)
    down = "model.layers.1.mlp.experts.0.down_proj.weight_scale"
    assert float(tensors[down]) != float(tensors["model.layers.1.mlp.experts.0.gate_proj.weight_scale"])


def test_weights_dequantise_close(tensors):
    """q * weight_scale has the generator's init std (unit-RMS outputs) and max|q| reaches 448
    for the linear that sets its group's scale."""
    for lin in ("model.layers.1.self_attn.kv_b_proj", "model.layers.0.self_attn.q_a_proj",
                "model.layers.1.mlp.experts.3.gate_proj"):
        q = np.asarray(tensors[lin + ".weight"]).astype(np.float32)
        w = q * float(tensors[lin + ".weight_scale"])
        assert abs(w.std() * math.sqrt(w.shape[1]) - 1.0) < 0.1, lin
        assert float(tensors[lin + ".input_scale"]) == np.float32(mo.MODELOPT_INPUT_SCALE)
    q = np.asarray(tensors["model.layers.1.self_attn.kv_b_proj.weight"]).astype(np.float32)
    assert np.abs(q).max() == tm.FP8_MAX


def test_per_tensor_quantisation_round_trip():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 200)).astype(np.float32) * 0.05
    q, s = mo.quantize_fp8_tensor(w)
    assert q.dtype == tm.FP8 and s.dtype == np.float32 and s.shape == ()
    assert np.abs(q.astype(np.float32) * s - w).max() <= np.abs(w).max() / 16
    q2, s2 = mo.quantize_fp8_tensor(w, shared_with=w * 2)
    assert float(s2) == pytest.approx(2 * float(s)) and np.abs(q2.astype(np.float32)).max() <= 224


def test_fusion_partner():
    assert mo.fusion_partner("model.layers.0.self_attn.q_a_proj") == "model.layers.0.self_attn.kv_a_proj_with_mqa"
    assert mo.fusion_partner("model.layers.1.mlp.experts.3.up_proj") == "model.layers.1.mlp.experts.3.gate_proj"
    assert mo.fusion_partner("model.layers.1.self_attn.kv_b_proj") is None


# ---------------------------------------------------------------------------------------
# Upstream's own config code, run on CPU: the pure functions are lifted out of the sources
# (their modules import torch) and executed on the committed config.
# ---------------------------------------------------------------------------------------

def _upstream_function(rel: str, cls_name: str, fn_name: str, namespace: dict):
    from slim import upstream as up

    root = up.default_tree(up.load_pin())
    if not (root / rel).is_file():
        pytest.skip("upstream sglang not fetched")
    tree = ast.parse((root / rel).read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls_name)
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == fn_name)
    fn.decorator_list, fn.returns = [], None
    for arg in fn.args.args:
        arg.annotation = None
    ns = dict(namespace)
    exec(compile(ast.Module(body=[fn], type_ignores=[]), rel, "exec"), ns)  # noqa: S102
    return ns[fn_name]


def test_upstream_code_reads_the_config_as_modelopt_fp8():
    quant = base_config()["quantization_config"]
    parse = _upstream_function("sglang/srt/configs/model_config.py", "ModelConfig",
                               "_parse_modelopt_quant_config", {})
    parsed = parse(None, {"quantization": quant})  # _parse_quant_hf_config's call for quant_method "modelopt"
    assert parsed == {"quant_method": "modelopt_fp8", "quant_algo": "FP8"}
    hf_quant = {**quant, **parsed}
    override = _upstream_function("sglang/srt/layers/quantization/base_config.py", "QuantizationConfig",
                                  "_modelopt_override_quantization_method", {})
    assert override(None, hf_quant, "modelopt_fp8") == "modelopt_fp8"  # the scenario's --quantization
    assert override(None, hf_quant, "modelopt") == "modelopt_fp8"
    get_from_keys = _upstream_function("sglang/srt/layers/quantization/base_config.py", "QuantizationConfig",
                                       "get_from_keys", {})

    class Made:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    Made.get_from_keys = staticmethod(get_from_keys)
    from_config = _upstream_function("sglang/srt/layers/quantization/modelopt_quant.py", "ModelOptFp8Config",
                                     "from_config", {})
    for config in (hf_quant, mo.hf_quant_config(quant)):  # config.json's flat form, hf_quant_config.json's
        made = from_config(Made, config).kwargs
        assert made["is_checkpoint_fp8_serialized"] is True and made["kv_cache_quant_method"] is None
        assert made["exclude_modules"] == quant["ignore"]


def test_exclusion_agrees_with_upstream_is_layer_excluded():
    ignore = base_config()["quantization_config"]["ignore"]
    excluded = _upstream_function("sglang/srt/layers/quantization/modelopt_quant.py", "ModelOptQuantConfig",
                                  "is_layer_excluded", {"re": re})

    class Config:
        exclude_modules = ignore

    cfg = dict(base_config(), vocab_size=4096)
    linears = {n[: -len(".weight")] for n, _, s in tm.checkpoint_layout(cfg) if len(s) == 2}
    linears |= {"lm_head", "model.shared_head.head", "model.eh_proj", "model.layers.1.mlp.experts",
                "model.layers.0.self_attn.fused_qkv_a_proj_with_mqa", "model.layers.0.mlp.gate_up_proj"}
    for prefix in sorted(linears):
        assert mo.modelopt_excluded(prefix, ignore) == excluded(Config(), prefix), prefix
