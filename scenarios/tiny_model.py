"""Deterministic tiny-but-real DeepSeek-V3 FP8 checkpoint and tokenizer.

`python -m scenarios.tiny_model OUT_DIR [--seed N]` writes a HuggingFace model directory that
upstream SGLang loads with real weights (no `--load-format dummy`) and a real tokenizer:

* a byte-level BPE tokenizer trained on a built-in corpus, with the DeepSeek special tokens at
  fixed low ids and the DeepSeek-V3/R1 chat template (thinking and tool-call sections);
* `config.json` (the committed base config with the tokenizer's vocabulary size);
* `model.safetensors` with every tensor the DeepSeek-V3 HF checkpoint has, block-FP8
  (float8_e4m3fn + float32 `weight_scale_inv` per 128x128 block) where the real checkpoint is
  FP8, bf16 elsewhere, float32 router correction bias; the NextN/MTP layer included;
* with `"quant_method": "w4afp8"` (models/tiny-dsv3-w4afp8.json) the routed experts are int4
  instead: two signed int4 values per int8 byte (even input column in the low nibble), a float32
  `weight_scale_inv` per row and group of 128 input columns, and a static float32 `input_scale`
  per projection (gate and up equal), the layout sglang's W4AFp8MoEMethod loads;
* with `"quant_method": "modelopt"`, `"quant_algo": "FP8"` (models/tiny-dsv3-modelopt-fp8.json)
  the NVIDIA ModelOpt FP8 layout: per-tensor FP8 with scalar float32 `weight_scale` and static
  `input_scale`, the `ignore`d modules bf16, plus hf_quant_config.json (scenarios/tiny_modelopt.py).

Weights are random (PCG64, one stream per tensor name) but shaped so that greedy decoding is
stable: the residual stream stays O(1) (each attention / MLP branch adds RMS ~0.3-0.5), and
`lm_head` = a context-dependent random part (logit std ~3) + a fixed random "successor" map:
every ordinary token t has a successor succ(t) whose logit is raised by ~20-25 when the last
hidden state still points along t's embedding. After an ordinary token the top-1 therefore wins
by several logits (numpy reference forward: 6-20, rarely ~2.5), so it does not flip with kernel
or batch rounding noise. Special tokens have no successor and small embeddings, so the first
token after a chat prompt's final `<｜Assistant｜>` is chosen by the context (different prompts
give different completions); that one step has ordinary random-logit margins (0.1-2 seen).

The generator is split by concern: scenarios/tiny_tokenizer.py (tokenizer, chat template),
scenarios/tiny_quant.py (block FP8 and int4 quantisation), scenarios/tiny_modelopt.py (ModelOpt
FP8), scenarios/tiny_checkpoint.py (layout,
weight values, safetensors writer); this module is the command and re-exports their public names.

Needs only numpy, ml_dtypes and tokenizers (safetensors is written by hand: no torch).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scenarios.tiny_checkpoint import checkpoint_layout, write_checkpoint
from scenarios.tiny_quant import (
    BF16,
    FP8,
    FP8_MAX,
    INT4_GROUP,
    W4_INPUT_SCALE,
    dequantize_fp8_block,
    dequantize_int4_group,
    quantize_fp8_block,
    quantize_int4_group,
)
from scenarios.tiny_safetensors import read_safetensors, write_safetensors
from scenarios.tiny_tokenizer import (
    BOS,
    CHAT_TEMPLATE,
    EOS,
    NUM_SPECIAL,
    PAD,
    SPECIAL_IDS,
    SPECIAL_TOKENS,
    build_tokenizer,
    training_corpus,
)

# The generator's modules, in one list: scenarios/model_cache.py keys its cache on their source.
GENERATOR_FILES = tuple(Path(__file__).resolve().parent / f"{m}.py"
                        for m in ("tiny_model", "tiny_tokenizer", "tiny_checkpoint", "tiny_quant", "tiny_modelopt",
                                  "tiny_compressed", "tiny_safetensors"))
BASE_CONFIG_PATH = Path(__file__).resolve().parent / "models" / "tiny-dsv3-fp8.json"

__all__ = ["BASE_CONFIG_PATH", "BF16", "BOS", "CHAT_TEMPLATE", "EOS", "FP8", "FP8_MAX", "GENERATOR_FILES", "INT4_GROUP",
           "NUM_SPECIAL", "PAD", "SPECIAL_IDS", "SPECIAL_TOKENS", "W4_INPUT_SCALE", "build_tokenizer",
           "checkpoint_layout", "dequantize_fp8_block", "dequantize_int4_group", "main", "quantize_fp8_block",
           "quantize_int4_group", "read_safetensors", "training_corpus", "write_checkpoint", "write_safetensors"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=4096)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    vocab = build_tokenizer(args.out_dir, args.vocab_size)
    base = json.loads(BASE_CONFIG_PATH.read_text())
    write_checkpoint(args.out_dir, base, args.seed, tokenizer_vocab_size=vocab)
    size = sum(p.stat().st_size for p in args.out_dir.iterdir() if p.is_file())
    print(f"tiny-dsv3-fp8: vocab {vocab}, {size} bytes in {args.out_dir} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
