"""Tests for the tiny DeepSeek-V3 FP8 checkpoint + tokenizer generator (CPU only, no torch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from scenarios import tiny_model as tm

# A shrunken config: every structural feature of the real one (MLA with q/kv LoRA, dense
# first layer, grouped top-k MoE with a shared expert, one NextN layer, FP8 128x128 blocks,
# a row count that is not a multiple of 128 in kv_a_proj_with_mqa) at a fraction of the size.
SMALL = {
    "hidden_size": 256,
    "intermediate_size": 384,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "n_routed_experts": 16,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
    "q_lora_rank": 384,
    "kv_lora_rank": 128,
}


def base_config() -> dict:
    return json.loads(tm.BASE_CONFIG_PATH.read_text())


def build(out: Path, seed: int = 0) -> Path:
    vocab = tm.build_tokenizer(out)
    tm.write_checkpoint(out, base_config(), seed, overrides=SMALL, tokenizer_vocab_size=vocab)
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-a"))


@pytest.fixture(scope="module")
def tensors(model_dir) -> dict[str, np.ndarray]:
    return tm.read_safetensors(model_dir / "model.safetensors")


# ---------------------------------------------------------------------------------------
# Expected tensor list, written out from SGLang 0.5.17's DeepSeek loader
# (models/deepseek_v2.py, deepseek_nextn.py, deepseek_common/deepseek_weight_loader.py)
# and the DeepSeek-V3 HF checkpoint convention.
# ---------------------------------------------------------------------------------------

def expected_tensors(cfg: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    nh, dn, dr, dv = (cfg[k] for k in ("num_attention_heads", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"))
    ql, kl = cfg["q_lora_rank"], cfg["kv_lora_rank"]
    mi, di, e = cfg["moe_intermediate_size"], cfg["intermediate_size"], cfg["n_routed_experts"]
    c = lambda n: -(-n // 128)  # noqa: E731  number of 128-blocks
    exp: dict[str, tuple[str, tuple[int, ...]]] = {}

    def fp8(name, o, i):
        exp[name + ".weight"] = ("F8_E4M3", (o, i))
        exp[name + ".weight_scale_inv"] = ("F32", (c(o), c(i)))

    def layer(p, sparse):
        exp[p + "input_layernorm.weight"] = ("BF16", (h,))
        exp[p + "post_attention_layernorm.weight"] = ("BF16", (h,))
        fp8(p + "self_attn.q_a_proj", ql, h)  # fused with kv_a_proj_with_mqa by the loader
        exp[p + "self_attn.q_a_layernorm.weight"] = ("BF16", (ql,))
        fp8(p + "self_attn.q_b_proj", nh * (dn + dr), ql)
        fp8(p + "self_attn.kv_a_proj_with_mqa", kl + dr, h)
        exp[p + "self_attn.kv_a_layernorm.weight"] = ("BF16", (kl,))
        fp8(p + "self_attn.kv_b_proj", nh * (dn + dv), kl)
        fp8(p + "self_attn.o_proj", h, nh * dv)
        if not sparse:
            for m, (o, i) in {"gate_proj": (di, h), "up_proj": (di, h), "down_proj": (h, di)}.items():
                fp8(f"{p}mlp.{m}", o, i)
            return
        exp[p + "mlp.gate.weight"] = ("BF16", (e, h))  # MoEGate: plain nn.Parameter
        exp[p + "mlp.gate.e_score_correction_bias"] = ("F32", (e,))  # float32 param (noaux_tc)
        for owner in [f"experts.{j}" for j in range(e)] + ["shared_experts"]:
            inter = mi * (cfg["n_shared_experts"] if owner == "shared_experts" else 1)
            for m, (o, i) in {"gate_proj": (inter, h), "up_proj": (inter, h), "down_proj": (h, inter)}.items():
                fp8(f"{p}mlp.{owner}.{m}", o, i)

    n = cfg["num_hidden_layers"]
    exp["model.embed_tokens.weight"] = ("BF16", (v, h))
    exp["model.norm.weight"] = ("BF16", (h,))
    exp["lm_head.weight"] = ("BF16", (v, h))
    for i in range(n):
        layer(f"model.layers.{i}.", sparse=i >= cfg["first_k_dense_replace"])
    p = f"model.layers.{n}."  # NextN: nextn_layer_prefix = model.layers.{num_hidden_layers}
    exp[p + "embed_tokens.weight"] = ("BF16", (v, h))  # skipped by the loader, kept as in HF
    exp[p + "shared_head.head.weight"] = ("BF16", (v, h))  # idem
    for name in ("enorm", "hnorm", "shared_head.norm"):
        exp[p + name + ".weight"] = ("BF16", (h,))
    exp[p + "eh_proj.weight"] = ("BF16", (h, 2 * h))  # nn.Linear, unquantised
    layer(p, sparse=True)  # DeepseekV2DecoderLayer(is_nextn=True) is always sparse
    return exp


def test_layout_matches_loader_full_config():
    cfg = dict(base_config(), vocab_size=4096)
    layout = tm.checkpoint_layout(cfg)
    got = {n: (d, tuple(s)) for n, d, s in layout}
    assert len(got) == len(layout)
    assert got == expected_tensors(cfg)
    # The real config's count: 3 top-level + dense layer 0 (20) + 2 MoE layers and the NextN
    # layer (1558 each: 256 experts x 6 + shared 6 + gate 2 + attention/norms 14) + NextN extras 6.
    assert len(got) == 4703
    # The loader concatenates q_a_proj and kv_a_proj_with_mqa (and their block scales) along
    # dim 0: q_lora_rank must be a whole number of 128-row blocks.
    assert cfg["q_lora_rank"] % 128 == 0
    assert got["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"] == ("F32", (5, 8))


def test_written_tensors_match_layout(model_dir, tensors):
    cfg = json.loads((model_dir / "config.json").read_text())
    exp = expected_tensors(cfg)
    names = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "BF16": ml_dtypes.bfloat16, "F32": np.float32}
    assert set(tensors) == set(exp)
    for name, (dtype, shape) in exp.items():
        assert tensors[name].dtype == np.dtype(names[dtype]), name
        assert tensors[name].shape == shape, name


def test_safetensors_readable_by_reference_parser(model_dir, tensors):
    safetensors = pytest.importorskip("safetensors")
    with safetensors.safe_open(str(model_dir / "model.safetensors"), "np") as f:
        assert set(f.keys()) == set(tensors)
        assert f.metadata() == {"format": "pt"}
        for name in ("model.layers.1.mlp.experts.3.up_proj.weight", "lm_head.weight",
                     "model.layers.1.mlp.gate.e_score_correction_bias"):
            s = f.get_slice(name)
            assert tuple(s.get_shape()) == tensors[name].shape
            assert s.get_dtype() == {"float8_e4m3fn": "F8_E4M3", "bfloat16": "BF16", "float32": "F32"}[
                tensors[name].dtype.name]


def test_config(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    assert cfg["vocab_size"] % 256 == 0 and cfg["vocab_size"] >= len(tok["model"]["vocab"])
    assert (cfg["bos_token_id"], cfg["eos_token_id"]) == (0, 1)
    assert cfg["architectures"] == ["DeepseekV3ForCausalLM"]
    assert cfg["quantization_config"]["weight_block_size"] == [128, 128]
    gen = json.loads((model_dir / "generation_config.json").read_text())
    assert (gen["bos_token_id"], gen["eos_token_id"]) == (0, 1)


def test_deterministic(model_dir, tmp_path):
    other = build(tmp_path / "b")
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (model_dir / f).read_bytes() == (other / f).read_bytes(), f


def test_seed_changes_weights(tmp_path):
    cfg = base_config()
    tm.write_checkpoint(tmp_path / "s1", cfg, 1, overrides=SMALL, tokenizer_vocab_size=4096)
    tm.write_checkpoint(tmp_path / "s2", cfg, 2, overrides=SMALL, tokenizer_vocab_size=4096)
    a = tm.read_safetensors(tmp_path / "s1" / "model.safetensors")["model.layers.0.self_attn.o_proj.weight"]
    b = tm.read_safetensors(tmp_path / "s2" / "model.safetensors")["model.layers.0.self_attn.o_proj.weight"]
    assert a.view(np.uint8).tobytes() != b.view(np.uint8).tobytes()


def test_fp8_block_quantisation():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((576, 300)).astype(np.float32) * 0.05
    w[:128, :128] *= 20  # blocks with different ranges get different scales
    q, s = tm.quantize_fp8_block(w)
    assert q.dtype == ml_dtypes.float8_e4m3fn and s.dtype == np.float32 and s.shape == (5, 3)
    np.testing.assert_allclose(s[0, 0], np.abs(w[:128, :128]).max() / 448, rtol=1e-6)
    np.testing.assert_allclose(s[4, 2], np.abs(w[512:, 256:]).max() / 448, rtol=1e-6)
    back = tm.dequantize_fp8_block(q, s)
    # e4m3 has 3 mantissa bits: relative error <= 2^-4 for normal values.
    err = np.abs(back - w)
    bound = np.abs(w) * 2.0**-4 + np.repeat(np.repeat(s, 128, 0), 128, 1)[:576, :300] * 2.0**-6
    assert (err <= bound + 1e-12).all()
    assert np.abs(q.astype(np.float32)).max() <= 448


def test_written_fp8_dequantises_close(tensors):
    name = "model.layers.1.mlp.experts.0.gate_proj"
    q, s = tensors[name + ".weight"], tensors[name + ".weight_scale_inv"]
    w = tm.dequantize_fp8_block(q, s)
    # Block amax maps to 448 exactly: each block's largest |q| is the e4m3 max.
    qa = np.abs(q.astype(np.float32)).reshape(s.shape[0], 128, s.shape[1], 128).max(axis=(1, 3))
    np.testing.assert_array_equal(qa, 448.0)
    # Dequantised weights have the intended init std 1/sqrt(fan_in).
    assert abs(w.std() * math.sqrt(w.shape[1]) - 1.0) < 0.05


def test_norms_and_structure(tensors):
    assert (tensors["model.norm.weight"].astype(np.float32) == 1).all()
    eh = tensors["model.layers.2.eh_proj.weight"].astype(np.float32)
    h = eh.shape[0]
    assert abs(float(np.diag(eh[:, :h]).mean()) - 1.0) < 0.05
    np.testing.assert_array_equal(tensors["model.layers.2.embed_tokens.weight"].view(np.uint16),
                                  tensors["model.embed_tokens.weight"].view(np.uint16))
    np.testing.assert_array_equal(tensors["model.layers.2.shared_head.head.weight"].view(np.uint16),
                                  tensors["lm_head.weight"].view(np.uint16))


def test_successor_margin(tensors):
    """Logits of a hidden state aligned with token t's embedding pick succ(t) by a wide margin."""
    e = tensors["model.embed_tokens.weight"].astype(np.float32)
    head = tensors["lm_head.weight"].astype(np.float32)
    h = e[tm.NUM_SPECIAL : tm.NUM_SPECIAL + 64]
    h = h / np.sqrt((h * h).mean(-1, keepdims=True))  # the final RMSNorm
    logits = h @ head.T
    top2 = np.sort(logits, axis=-1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 10
    assert (logits.argmax(-1) >= tm.NUM_SPECIAL).all()


# ---------------------------------------------------------------------------------------
# Tokenizer and chat template
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def test_special_token_ids(tokenizer, model_dir):
    assert tokenizer.token_to_id("<｜begin▁of▁sentence｜>") == 0
    assert tokenizer.token_to_id("<｜end▁of▁sentence｜>") == 1
    for tok, i in tm.SPECIAL_IDS.items():
        assert tokenizer.token_to_id(tok) == i
    assert tokenizer.get_vocab_size() == 4096
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert cfg["bos_token"] == "<｜begin▁of▁sentence｜>" and cfg["eos_token"] == "<｜end▁of▁sentence｜>"
    assert cfg["add_bos_token"] is True
    assert {int(k): v["content"] for k, v in cfg["added_tokens_decoder"].items()} == {
        i: t for t, i in tm.SPECIAL_IDS.items()}


def test_tokenizer_round_trip(tokenizer):
    text = "The quick brown fox jumps over 1234 lazy dogs.\n  Indented: {\"city\": \"Paris\"} — naïve 你好"
    enc = tokenizer.encode(text)
    assert enc.ids[0] == 0  # bos added by the post-processor
    assert tokenizer.decode(enc.ids, skip_special_tokens=True) == text
    english = "The children walked along the river and found a small boat near the bridge."
    assert len(tokenizer.encode(english).ids) < len(english) / 3  # real merges, not bytes
    marked = "<｜User｜>hi<｜Assistant｜><think>x</think><｜tool▁calls▁begin｜><｜tool▁sep｜>"
    ids = tokenizer.encode(marked, add_special_tokens=False).ids
    assert ids[0] == tm.SPECIAL_IDS["<｜User｜>"] and tm.SPECIAL_IDS["<think>"] in ids
    # chat-structure tokens survive skip_special_tokens (reasoning/tool parsers need them)
    assert tokenizer.decode(ids, skip_special_tokens=True) == marked
    assert tokenizer.decode([0, 1], skip_special_tokens=True) == ""


def render(model_dir, messages, **kw):
    jinja2 = pytest.importorskip("jinja2")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
    # transformers' chat-template environment replaces tojson with a plain json.dumps
    # (jinja2's returns HTML-escaped Markup).
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    return env.from_string(cfg["chat_template"]).render(messages=messages, bos_token=cfg["bos_token"], **kw)


def test_chat_template_conversation(model_dir, tokenizer):
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"type": "function", "function": {"name": "get_time", "arguments": {"tz": "CET"}}},
        ]},
        {"role": "tool", "content": '{"temp": 20}'},
        {"role": "tool", "content": '{"time": "12:00"}'},
        {"role": "assistant", "content": "<think>It is warm.</think>It is 20 C at noon."},
        {"role": "user", "content": "Thanks"},
    ]
    out = render(model_dir, messages, add_generation_prompt=True)
    assert out == (
        "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Weather in Paris?<｜Assistant｜>"
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
        '{"city": "Paris"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n'
        '```json\n{"tz": "CET"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>'
        '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{"temp": 20}<｜tool▁output▁end｜>\n'
        '<｜tool▁output▁begin｜>{"time": "12:00"}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>'
        "It is 20 C at noon.<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜>"
    )
    ids = tokenizer.encode(out, add_special_tokens=False).ids
    assert ids[0] == 0 and ids[-1] == tm.SPECIAL_IDS["<｜Assistant｜>"]
    assert tokenizer.decode(ids, skip_special_tokens=False) == out


def test_chat_template_single_turn(model_dir):
    out = render(model_dir, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert out == "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>"


def test_v2_style_layout_is_unquantised_without_q_lora():
    base = json.loads((tm.BASE_CONFIG_PATH.parent / "tiny-dsv2-bf16.json").read_text())
    specs = {name: (dtype, shape) for name, dtype, shape in tm.checkpoint_layout({**base, "vocab_size": 4096})}
    assert specs["model.layers.0.self_attn.q_proj.weight"] == ("BF16", (16 * 192, 1024))
    assert "model.layers.0.self_attn.q_a_proj.weight" not in specs
    assert not any(n.endswith("weight_scale_inv") or n.endswith("e_score_correction_bias") for n in specs)
    assert {d for d, _ in specs.values()} == {"BF16"}
    assert "model.layers.3.eh_proj.weight" not in specs  # V2 has no NextN layer


def test_int4_group_quantisation_packs_two_signed_nibbles():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 256)).astype(np.float32) * 0.05
    packed, scale = tm.quantize_int4_group(w)
    assert packed.dtype == np.int8 and packed.shape == (8, 128) and scale.shape == (8, 2)
    np.testing.assert_allclose(scale[3, 1], np.abs(w[3, 128:]).max() / 7, rtol=1e-6)
    back = tm.dequantize_int4_group(packed, scale)
    assert (np.abs(back - w) <= np.repeat(scale, 128, axis=1) / 2 + 1e-7).all()  # round to nearest
    # Column 2k is the low nibble, 2k+1 the high one (sglang's int4 packing).
    q = np.clip(np.rint(w / np.repeat(scale, 128, axis=1)), -8, 7).astype(np.int8)
    np.testing.assert_array_equal(packed.view(np.uint8) & 0xF, q[:, 0::2].view(np.uint8) & 0xF)
    np.testing.assert_array_equal(packed >> 4, q[:, 1::2])


def test_w4afp8_layout_matches_the_w4afp8_moe_method():
    """Routed experts int4 in the shapes W4AFp8MoEMethod.create_weights gives one expert's shard;
    shared experts and attention stay block FP8."""
    base = json.loads((Path(tm.__file__).parent / "models" / "tiny-dsv3-w4afp8.json").read_text())
    assert base["quantization_config"]["quant_method"] == "w4afp8"
    specs = {n: (d, s) for n, d, s in tm.checkpoint_layout({**base, "vocab_size": 4096})}
    h, inter = base["hidden_size"], base["moe_intermediate_size"]
    e = "model.layers.1.mlp.experts.7"
    assert specs[f"{e}.gate_proj.weight"] == ("I8", (inter, h // 2))
    assert specs[f"{e}.gate_proj.weight_scale_inv"] == ("F32", (inter, h // tm.INT4_GROUP))
    assert specs[f"{e}.down_proj.weight"] == ("I8", (h, inter // 2))
    assert specs[f"{e}.down_proj.weight_scale_inv"] == ("F32", (h, inter // tm.INT4_GROUP))
    assert specs[f"{e}.up_proj.input_scale"] == ("F32", ())
    assert specs["model.layers.1.mlp.shared_experts.gate_proj.weight"][0] == "F8_E4M3"
    assert specs["model.layers.0.mlp.gate_proj.weight"][0] == "F8_E4M3"
    assert tm.W4_INPUT_SCALE["gate_proj"] == tm.W4_INPUT_SCALE["up_proj"]  # the loader requires w1 == w3


def test_w4afp8_checkpoint_writes_and_reads_back(tmp_path):
    base = json.loads((Path(tm.__file__).parent / "models" / "tiny-dsv3-w4afp8.json").read_text())
    tm.write_checkpoint(tmp_path, base, overrides={**SMALL, "n_routed_experts": 4, "n_group": 2, "topk_group": 1},
                        tokenizer_vocab_size=600)
    t = tm.read_safetensors(tmp_path / "model.safetensors")
    name = "model.layers.1.mlp.experts.2.gate_proj"
    w = tm.dequantize_int4_group(np.asarray(t[name + ".weight"]), np.asarray(t[name + ".weight_scale_inv"]))
    assert abs(w.std() * math.sqrt(w.shape[1]) - 1.0) < 0.1
    assert float(t[name + ".input_scale"]) == np.float32(tm.W4_INPUT_SCALE["gate_proj"])


def test_model_cache_key_covers_every_generator_module():
    """scenarios/model_cache.py keys cached models on GENERATOR_FILES: a generator module left out
    could change the weights while a stale cached model is served."""
    assert set(tm.GENERATOR_FILES) == set(Path(tm.__file__).resolve().parent.glob("tiny_*.py"))


def test_chat_template_file_is_the_tokenizers_own():
    """dsv3_fp8_tp1_flags_frontdoor passes this file as --chat-template: it must stay the tiny
    tokenizer's template, or that scenario's chat answers drift from dsv3_fp8_tp1's."""
    from scenarios import tiny_tokenizer

    path = Path(__file__).parents[1] / "configs" / "tiny_deepseek_chat.jinja"
    assert path.read_text() == tiny_tokenizer.CHAT_TEMPLATE
