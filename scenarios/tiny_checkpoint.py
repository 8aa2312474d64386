"""The tiny model's checkpoint writer: tensor layout and deterministic weight values.

Part of the tiny checkpoint generator (scenarios/tiny_model.py, whose docstring says how the
weights are shaped); its output bytes are part of every recording's model digest.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scenarios import tiny_compressed, tiny_modelopt
from scenarios.tiny_quant import BF16, INT4_GROUP, W4_INPUT_SCALE, quantize_fp8_block, quantize_int4_group
from scenarios.tiny_safetensors import write_safetensors
from scenarios.tiny_tokenizer import BOS, EOS, NUM_SPECIAL, SPECIAL_IDS, written_vocab_size

# ----------------------------------------------------------------------------------------
# Checkpoint layout
# ----------------------------------------------------------------------------------------

def _linear_shapes(cfg: dict) -> dict[str, tuple[int, int]]:
    """[out, in] of every per-layer linear, keyed by its name under the layer."""
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    qk = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    q_proj = {"self_attn.q_proj": (nh * qk, h)} if cfg.get("q_lora_rank") is None else {
        "self_attn.q_a_proj": (cfg["q_lora_rank"], h),
        "self_attn.q_b_proj": (nh * qk, cfg["q_lora_rank"]),
    }
    return {
        **q_proj,
        "self_attn.kv_a_proj_with_mqa": (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"], h),
        "self_attn.kv_b_proj": (nh * (cfg["qk_nope_head_dim"] + cfg["v_head_dim"]), cfg["kv_lora_rank"]),
        "self_attn.o_proj": (h, nh * cfg["v_head_dim"]),
    }


def checkpoint_layout(cfg: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, safetensors dtype, shape) of every tensor, in file order.

    Follows the DeepSeek-V3 HF checkpoint: FP8 (+ float32 weight_scale_inv) for attention and
    MLP/expert projections; bf16 for embeddings, heads, norms, the router gate and the NextN
    eh_proj; float32 for the router's e_score_correction_bias. Without a quantization_config
    (DeepSeek-V2 style) every projection is bf16; without q_lora_rank there is one q_proj.
    W4AFP8: routed experts int4 (quantize_int4_group), the rest FP8. ModelOpt FP8: scalar float32
    weight_scale and input_scale (tiny_modelopt.py); compressed-tensors FP8: a weight_scale per output
    channel (tiny_compressed.py); the projections their `ignore` lists name stay bf16."""
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    quant = cfg.get("quantization_config")
    bo, bi = quant.get("weight_block_size", (0, 0)) if quant else (0, 0)
    modelopt, compressed = tiny_modelopt.is_modelopt_fp8(quant), tiny_compressed.is_compressed_fp8(quant)
    int8 = tiny_compressed.is_w8a8_int8(quant)
    int4_experts = bool(quant) and quant.get("quant_method") == "w4afp8"
    specs: list[tuple[str, str, tuple[int, ...]]] = []

    def fp8(name: str, out_in: tuple[int, int]) -> None:
        o, i = out_in
        if tiny_compressed.unquantised(name, quant):
            specs.append((f"{name}.weight", "BF16", (o, i)))
            return
        specs.append((f"{name}.weight", "I8" if int8 else "F8_E4M3", (o, i)))
        if compressed or int8:
            specs.append((f"{name}.weight_scale", "F32", (o, 1)))
        elif modelopt:
            specs.extend([(f"{name}.weight_scale", "F32", ()), (f"{name}.input_scale", "F32", ())])
        else:
            specs.append((f"{name}.weight_scale_inv", "F32", (-(-o // bo), -(-i // bi))))

    def bf16(name: str, shape: tuple[int, ...]) -> None:
        specs.append((name, "BF16", shape))

    def int4(name: str, out_in: tuple[int, int]) -> None:
        o, i = out_in
        specs.append((f"{name}.weight", "I8", (o, i // 2)))
        specs.append((f"{name}.weight_scale_inv", "F32", (o, i // INT4_GROUP)))
        specs.append((f"{name}.input_scale", "F32", ()))

    def mlp(prefix: str, inter: int) -> None:
        linear = int4 if int4_experts and ".mlp.experts." in prefix else fp8
        linear(f"{prefix}.gate_proj", (inter, h))
        linear(f"{prefix}.up_proj", (inter, h))
        linear(f"{prefix}.down_proj", (h, inter))

    def decoder_layer(i: int, sparse: bool) -> None:
        p = f"model.layers.{i}"
        bf16(f"{p}.input_layernorm.weight", (h,))
        shapes = _linear_shapes(cfg)
        if cfg.get("q_lora_rank") is None:
            fp8(f"{p}.self_attn.q_proj", shapes["self_attn.q_proj"])
        else:
            fp8(f"{p}.self_attn.q_a_proj", shapes["self_attn.q_a_proj"])
            bf16(f"{p}.self_attn.q_a_layernorm.weight", (cfg["q_lora_rank"],))
            fp8(f"{p}.self_attn.q_b_proj", shapes["self_attn.q_b_proj"])
        fp8(f"{p}.self_attn.kv_a_proj_with_mqa", shapes["self_attn.kv_a_proj_with_mqa"])
        bf16(f"{p}.self_attn.kv_a_layernorm.weight", (cfg["kv_lora_rank"],))
        fp8(f"{p}.self_attn.kv_b_proj", shapes["self_attn.kv_b_proj"])
        fp8(f"{p}.self_attn.o_proj", shapes["self_attn.o_proj"])
        bf16(f"{p}.post_attention_layernorm.weight", (h,))
        if not sparse:
            mlp(f"{p}.mlp", cfg["intermediate_size"])
            return
        e = cfg["n_routed_experts"]
        bf16(f"{p}.mlp.gate.weight", (e, h))
        if cfg.get("topk_method") == "noaux_tc":  # V3's aux-loss-free router bias
            specs.append((f"{p}.mlp.gate.e_score_correction_bias", "F32", (e,)))
        for j in range(e):
            mlp(f"{p}.mlp.experts.{j}", cfg["moe_intermediate_size"])
        mlp(f"{p}.mlp.shared_experts", cfg["moe_intermediate_size"] * cfg["n_shared_experts"])

    n = cfg["num_hidden_layers"]
    bf16("model.embed_tokens.weight", (v, h))
    for i in range(n):
        decoder_layer(i, sparse=i >= cfg["first_k_dense_replace"] and i % cfg.get("moe_layer_freq", 1) == 0)
    bf16("model.norm.weight", (h,))
    bf16("lm_head.weight", (v, h))
    for k in range(cfg.get("num_nextn_predict_layers", 0)):
        p = f"model.layers.{n + k}"
        bf16(f"{p}.embed_tokens.weight", (v, h))
        bf16(f"{p}.enorm.weight", (h,))
        bf16(f"{p}.hnorm.weight", (h,))
        bf16(f"{p}.eh_proj.weight", (h, 2 * h))
        decoder_layer(n + k, sparse=True)
        bf16(f"{p}.shared_head.norm.weight", (h,))
        bf16(f"{p}.shared_head.head.weight", (v, h))
    return specs


# ----------------------------------------------------------------------------------------
# Weight values
# ----------------------------------------------------------------------------------------

BRANCH_RMS = 0.4  # target RMS of each attention / MLP branch output, vs. residual RMS ~1
RANDOM_LOGIT_STD = 3.0  # context-dependent part of the logits
SPECIAL_EMBED_SCALE = 0.25  # embedding RMS of special tokens, vs. 1 for ordinary tokens
SUCCESSOR_BOOST = 32.0  # logit boost of succ(t) when the final hidden state is aligned with e_t


def _rng(seed: int, key: str) -> np.random.Generator:
    """One independent PCG64 stream per tensor key, independent of generation order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(key.encode())])))


def _gauss(seed: int, key: str, shape: tuple[int, ...], std: float) -> np.ndarray:
    x = _rng(seed, key).standard_normal(shape, dtype=np.float32)
    x *= np.float32(std)
    return x


def _linear_std(name: str, out_in: tuple[int, int], cfg: dict) -> float:
    """Init std for a projection: unit-RMS outputs, except branch outputs scaled to BRANCH_RMS."""
    o, i = out_in
    if name.endswith("o_proj"):
        return BRANCH_RMS / math.sqrt(i)
    if name.endswith("down_proj"):
        # silu(g) * u with unit-RMS g, u has RMS ~0.6; the routed sum is scaled by
        # routed_scaling_factor * ~sqrt(1/topk) (normalised top-k weights).
        std = BRANCH_RMS / (0.6 * math.sqrt(i))
        if ".experts." in name:
            k = cfg["num_experts_per_tok"]
            std /= cfg.get("routed_scaling_factor", 1.0) * math.sqrt(1.0 / k)
        elif "shared_experts" in name:
            std *= 0.75
        return std
    return 1.0 / math.sqrt(i)


class _Weights:
    """Computes each tensor's values on demand, deterministically from (seed, name)."""

    def __init__(self, cfg: dict, seed: int, tokenizer_vocab: int):
        self.cfg, self.seed = cfg, seed
        quant = cfg.get("quantization_config")
        self.block = tuple(quant.get("weight_block_size", (128, 128))) if quant else (128, 128)
        self.modelopt, self.compressed = tiny_modelopt.is_modelopt_fp8(quant), tiny_compressed.is_compressed_fp8(quant)
        self.int8 = tiny_compressed.is_w8a8_int8(quant)  # its int8 weights are no int4 (w4afp8) ones
        self.tok_vocab = tokenizer_vocab
        self._quant_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._embed: np.ndarray | None = None
        self._head: np.ndarray | None = None
        layout = checkpoint_layout(cfg)
        self._shapes = {n[: -len(".weight")]: s for n, d, s in layout if d == "F8_E4M3" or (d == "I8" and self.int8)}
        self._int4 = {n[: -len(".weight")]: (s[0], s[1] * 2) for n, d, s in layout if d == "I8" and not self.int8}

    def embed(self) -> np.ndarray:
        if self._embed is None:
            v, h = self.cfg["vocab_size"], self.cfg["hidden_size"]
            e = _gauss(self.seed, "embed_tokens", (v, h), 1.0)
            # Special tokens (chat markers) get small embeddings, so the hidden state at a
            # prompt's final `<｜Assistant｜>` is dominated by the attended context.
            e[:NUM_SPECIAL] *= SPECIAL_EMBED_SCALE
            self._embed = e.astype(BF16)
        return self._embed

    def successor(self) -> np.ndarray:
        """succ[k] for ordinary token id NUM_SPECIAL + k: a fixed random permutation of the
        ordinary (non-special) tokens."""
        ordinary = np.arange(NUM_SPECIAL, self.tok_vocab)
        return _rng(self.seed, "successor").permutation(ordinary)

    def head(self) -> np.ndarray:
        if self._head is None:
            v, h = self.cfg["vocab_size"], self.cfg["hidden_size"]
            w = _gauss(self.seed, "lm_head", (v, h), RANDOM_LOGIT_STD / math.sqrt(h))
            w[:NUM_SPECIAL] *= 0.5  # specials and padding rows rarely win
            w[self.tok_vocab :] *= 0.5
            e = self.embed().astype(np.float32)
            e /= np.linalg.norm(e, axis=1, keepdims=True)
            # logit(succ(t)) += boost * cos(h_final, e_t), with ||h_final|| = sqrt(hidden).
            # Only ordinary tokens have a successor: after a special token (the chat prompt's
            # final `<｜Assistant｜>`) the context-dependent random part picks the first token.
            ordinary = np.arange(NUM_SPECIAL, self.tok_vocab)
            np.add.at(w, self.successor(), e[ordinary] * np.float32(SUCCESSOR_BOOST / math.sqrt(h)))
            self._head = w.astype(BF16)
        return self._head

    def _linear(self, lin: str) -> np.ndarray:
        out_in = self._shapes[lin]
        return _gauss(self.seed, lin, out_in, _linear_std(lin, out_in, self.cfg))

    def fp8(self, lin: str) -> tuple[np.ndarray, np.ndarray]:
        if lin not in self._quant_cache:
            self._quant_cache.clear()
            w = self._linear(lin)
            if self.modelopt:  # one scale over the linear and its fusion partner (tiny_modelopt.py)
                partner = tiny_modelopt.fusion_partner(lin)
                shared = self._linear(partner) if partner in self._shapes else None
                self._quant_cache[lin] = tiny_modelopt.quantize_fp8_tensor(w, shared)
            elif self.compressed or self.int8:
                quantize = tiny_compressed.quantize_int8_channel if self.int8 else tiny_compressed.quantize_fp8_channel
                self._quant_cache[lin] = quantize(w)
            else:
                self._quant_cache[lin] = quantize_fp8_block(w, self.block)
        return self._quant_cache[lin]

    def int4(self, lin: str) -> tuple[np.ndarray, np.ndarray]:
        if lin not in self._quant_cache:
            self._quant_cache.clear()
            out_in = self._int4[lin]
            w = _gauss(self.seed, lin, out_in, _linear_std(lin, out_in, self.cfg))
            self._quant_cache[lin] = quantize_int4_group(w)
        return self._quant_cache[lin]

    def values(self, specs: list[tuple[str, str, tuple[int, ...]]]) -> Iterator[np.ndarray]:
        h = self.cfg["hidden_size"]
        for name, dtype, shape in specs:
            if name.endswith(".input_scale"):
                scale = tiny_modelopt.MODELOPT_INPUT_SCALE if self.modelopt else W4_INPUT_SCALE[name.split(".")[-2]]
                yield np.array(scale, np.float32)
            elif name.endswith(".weight_scale"):  # ModelOpt's per-tensor or compressed-tensors' channel scale
                yield self.fp8(name[: -len(".weight_scale")])[1]
            elif (dtype == "I8" and not self.int8) or name[: -len(".weight_scale_inv")] in self._int4:
                yield self.int4(name.rsplit(".", 1)[0])[name.endswith(".weight_scale_inv")]
            elif name.endswith(".weight_scale_inv"):
                yield self.fp8(name[: -len(".weight_scale_inv")])[1]
            elif dtype in ("F8_E4M3", "I8"):  # FP8 or channel-int8 projections
                yield self.fp8(name[: -len(".weight")])[0]
            elif name.endswith("embed_tokens.weight"):
                yield self.embed()
            elif name == "lm_head.weight" or name.endswith("shared_head.head.weight"):
                yield self.head()
            elif name.endswith("norm.weight"):  # every RMSNorm, enorm/hnorm included
                yield np.ones(shape, BF16)
            elif name.endswith("mlp.gate.weight"):
                yield _gauss(self.seed, name, shape, 1.0 / math.sqrt(h)).astype(BF16)
            elif name.endswith("e_score_correction_bias"):
                yield _gauss(self.seed, name, shape, 0.02)
            elif name.endswith("eh_proj.weight"):
                # [identity | small random]: the MTP draft mostly follows the next token's
                # embedding, so it predicts the same successor as the target model.
                w = _gauss(self.seed, name, shape, 0.3 / math.sqrt(h))
                w[:, :h] += np.eye(h, dtype=np.float32)
                yield w.astype(BF16)
            elif dtype == "BF16" and name.endswith(("_proj.weight", "_proj_with_mqa.weight")):
                # An unquantised projection (DeepSeek-V2 style): same init as the FP8 ones.
                lin = name[: -len(".weight")]
                yield _gauss(self.seed, lin, shape, _linear_std(lin, shape, self.cfg)).astype(BF16)
            else:
                raise KeyError(f"no initialiser for {name}")


def write_checkpoint(out_dir: Path, base_config: dict, seed: int = 0, *,
                     overrides: dict | None = None, tokenizer_vocab_size: int | None = None) -> None:
    """Write config.json, generation_config.json and model.safetensors into out_dir. The vocabulary
    comes from `tokenizer_vocab_size`, else out_dir/tokenizer.json (build_tokenizer first), rounded up
    to a multiple of 256 in config.json; `overrides` replaces config keys (tests shrink the model)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_vocab = tokenizer_vocab_size or written_vocab_size(out_dir)
    if tok_vocab is None:
        raise FileNotFoundError(f"{out_dir}/tokenizer.json missing and no tokenizer_vocab_size given")
    cfg = json.loads(json.dumps(base_config))
    cfg.update(overrides or {})
    cfg["vocab_size"] = -(-tok_vocab // 256) * 256
    cfg["bos_token_id"], cfg["eos_token_id"] = SPECIAL_IDS[BOS], SPECIAL_IDS[EOS]
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    if tiny_modelopt.is_modelopt_fp8(cfg.get("quantization_config")):  # ModelOpt exports write both files
        hf_quant = tiny_modelopt.hf_quant_config(cfg["quantization_config"])
        (out_dir / "hf_quant_config.json").write_text(json.dumps(hf_quant, indent=2) + "\n")
    gen = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
    (out_dir / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    specs = checkpoint_layout(cfg)
    weights = _Weights(cfg, seed, tok_vocab)
    write_safetensors(out_dir / "model.safetensors", specs, weights.values(specs))
