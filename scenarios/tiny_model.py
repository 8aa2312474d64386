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
  per projection (gate and up equal), the layout sglang's W4AFp8MoEMethod loads.

Weights are random (PCG64, one stream per tensor name) but shaped so that greedy decoding is
stable: the residual stream stays O(1) (each attention / MLP branch adds RMS ~0.3-0.5), and
`lm_head` = a context-dependent random part (logit std ~3) + a fixed random "successor" map:
every ordinary token t has a successor succ(t) whose logit is raised by ~20-25 when the last
hidden state still points along t's embedding. After an ordinary token the top-1 therefore wins
by several logits (numpy reference forward: 6-20, rarely ~2.5), so it does not flip with kernel
or batch rounding noise. Special tokens have no successor and small embeddings, so the first
token after a chat prompt's final `<｜Assistant｜>` is chosen by the context (different prompts
give different completions); that one step has ordinary random-logit margins (0.1-2 seen).

Needs only numpy, ml_dtypes and tokenizers (safetensors is written by hand: no torch).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import ml_dtypes
import numpy as np

BASE_CONFIG_PATH = Path(__file__).resolve().parent / "models" / "tiny-dsv3-fp8.json"
FP8_MAX = 448.0  # largest finite float8_e4m3fn
BF16 = ml_dtypes.bfloat16
FP8 = ml_dtypes.float8_e4m3fn

# ----------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
NUM_PLACEHOLDERS = 13

# (content, special). Chat-structure tokens are added with special=False, as in the real
# DeepSeek tokenizer.json, so that decoding with skip_special_tokens keeps them (SGLang's
# reasoning and DeepSeek-V3 tool-call parsers look for them in the decoded text).
SPECIAL_TOKENS: list[tuple[str, bool]] = [
    (BOS, True),  # id 0
    (EOS, True),  # id 1
    (PAD, True),  # id 2
    ("<｜User｜>", False),
    ("<｜Assistant｜>", False),
    ("<think>", False),
    ("</think>", False),
    ("<｜tool▁calls▁begin｜>", False),
    ("<｜tool▁calls▁end｜>", False),
    ("<｜tool▁call▁begin｜>", False),
    ("<｜tool▁call▁end｜>", False),
    ("<｜tool▁sep｜>", False),
    ("<｜tool▁outputs▁begin｜>", False),
    ("<｜tool▁outputs▁end｜>", False),
    ("<｜tool▁output▁begin｜>", False),
    ("<｜tool▁output▁end｜>", False),
    ("<｜fim▁hole｜>", True),
    ("<｜fim▁begin｜>", True),
    ("<｜fim▁end｜>", True),
] + [(f"<｜place▁holder▁no▁{i}｜>", True) for i in range(NUM_PLACEHOLDERS)]
SPECIAL_IDS: dict[str, int] = {tok: i for i, (tok, _) in enumerate(SPECIAL_TOKENS)}
NUM_SPECIAL = len(SPECIAL_TOKENS)  # 32

# The DeepSeek-R1-0528 / V3-0324 chat template (HF tokenizer_config.json), with tool-call
# arguments accepted either as a JSON string or as a mapping.
CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', "
    "is_first_sp=true, is_last_user=false) %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"
    "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}"
    "{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}"
    "{%- endif %}{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}{% set content = message['content'] %}"
    "{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{%- set ns.is_first = false -%}"
    "{%- set ns.is_last_user = true -%}{{'<｜User｜>' + content + '<｜Assistant｜>'}}{%- endif %}"
    "{%- if message['role'] == 'assistant' %}{% if content is not none and '</think>' in content %}"
    "{% set content = content.split('</think>')[-1] %}{% endif %}{% endif %}"
    "{%- if message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] is not none %}"
    "{%- set ns.is_last_user = false -%}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{%- endif %}"
    "{%- set ns.is_first = false %}{%- set ns.is_tool = false -%}{%- set ns.is_output_first = true %}"
    "{%- for tool in message['tool_calls'] %}"
    "{%- set arguments = tool['function']['arguments'] if tool['function']['arguments'] is string "
    "else tool['function']['arguments'] | tojson %}"
    "{%- if not ns.is_first %}{%- if content is none %}"
    "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name']"
    " + '\\n' + '```json' + '\\n' + arguments + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- else %}"
    "{{content + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name']"
    " + '\\n' + '```json' + '\\n' + arguments + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- endif %}{%- set ns.is_first = true -%}"
    "{%- else %}"
    "{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name']"
    " + '\\n' + '```json' + '\\n' + arguments + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and (message['tool_calls'] is not defined or message['tool_calls'] is none)%}"
    "{%- set ns.is_last_user = false -%}{%- if ns.is_tool %}"
    "{{'<｜tool▁outputs▁end｜>' + content + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}"
    "{%- else %}{{content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_last_user = false -%}{%- set ns.is_tool = true -%}"
    "{%- if ns.is_output_first %}"
    "{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + content + '<｜tool▁output▁end｜>'}}"
    "{%- set ns.is_output_first = false %}"
    "{%- else %}{{'\\n<｜tool▁output▁begin｜>' + content + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}"
    "{%- endfor -%}"
    "{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"
    "{% if add_generation_prompt and not ns.is_last_user and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
)

_PROSE = """\
The service starts a small language model on a single accelerator and answers requests over HTTP.
A request carries a prompt, a few sampling parameters and an optional list of tools. The scheduler
collects requests into batches, runs a prefill pass over the new tokens, and then decodes one token
at a time until each request reaches its stop condition or its length limit. Every step reads the
key and value cache of earlier tokens, so the cache is the largest structure in memory after the
weights. When two prompts share a prefix, the radix cache keeps the common part once and both
requests reuse it, which saves time on long system prompts and multi-turn conversations.

The model itself has an embedding table, a few decoder layers and an output head. Each layer first
applies attention, where queries and keys are compressed through low-rank projections before the
heads are expanded, and then a feed-forward block. In most layers the feed-forward block is a
mixture of experts: a router scores every expert for every token, keeps the best eight, and adds
their outputs together with a shared expert that every token visits. The weights are stored in an
eight-bit floating point format with one scale for each block of one hundred and twenty-eight rows
and columns, and the kernels multiply them without expanding the matrices first.

Tools are described to the model as JSON schemas. When the model decides to call a tool, it writes
the name of the function and its arguments between special markers, the server parses them, and the
client runs the function and sends the result back as a new message. A weather tool might take a
city and a unit; a search tool might take a query and a number of results; a calculator might take
an expression. The answer should be short, correct and easy to check.

Reasoning models first think inside a dedicated section and only then write the final answer. The
server can separate the thinking from the answer, stream both, and hide the thinking from clients
that do not want it. Tests compare the text of the answer, the number of tokens, the finish reason
and the timing of the first token against recorded values, so the same prompt must give the same
output on every run.
"""

_WORDS = """\
about above across act add after again against age ago agree air all allow almost alone along
already also always among amount and animal another answer any appear apple area arm around arrive
art as ask at attack away baby back bad bag ball bank base be bear beat beauty bed before begin
behind believe bell best better between big bird bit black block blood blow blue board boat body
bone book born both bottom box boy branch bread break bright bring broad brother brown build burn
busy but buy by call came camp can capital captain car card care carry case cat catch cause cell
center century chair chance change character charge chart check chief child choose church circle
city claim class clean clear climb clock close cloud coast coat cold collect colony color column
come common company compare complete condition connect consider contain continue control cook cool
copy corn corner correct cost cotton could count country course cover cow crease create crop cross
crowd cry current cut dance danger dark day dead deal dear death decide decimal deep degree depend
describe desert design determine develop dictionary did differ difficult direct discuss distant
divide division do doctor does dog dollar done door double down draw dream dress drink drive drop
dry duck during each ear early earth ease east eat edge effect egg eight either electric element
else end enemy energy engine enough enter equal equate especially even evening event ever every
exact example except excite exercise expect experience experiment eye face fact fair fall family
famous far farm fast fat father favor fear feed feel feet fell felt few field fig fight figure fill
final find fine finger finish fire first fish fit five flat floor flow flower fly follow food foot
for force forest form forward found four fraction free fresh friend from front fruit full fun game
garden gas gather gave general gentle get girl give glad glass go gold gone good got govern grand
grass gray great green grew ground group grow guess guide gun had hair half hand happen happy hard
has hat have he head hear heard heart heat heavy held help her here high hill him his history hit
hold hole home hope horse hot hour house how huge human hundred hunt hurry ice idea if imagine in
inch include indicate industry insect instant instrument interest invent iron is island it job join
joy jump just keep kept key kill kind king knew know lady lake land language large last late laugh
law lay lead learn least leave led left leg length less let letter level lie life lift light like
line liquid list listen little live locate log lone long look lost lot loud love low machine made
magnet main major make man many map mark market mass master match material matter may me mean
measure meat meet melody memory metal method middle might mile milk million mind mine minute miss
mix modern molecule moment money month moon more morning most mother motion mount mountain mouth
move much multiply music must my name nation natural nature near necessary neck need neighbor never
new next night nine no noise noon nor north nose note nothing notice noun now number numeral object
observe occur ocean of off offer office often oh oil old on once one only open operate opposite or
order organ original other our out over own oxygen page paint pair paper paragraph parent part
particular party pass past path pattern pay people perhaps period person phrase pick picture piece
pitch place plain plan plane planet plant play please plural poem point poor populate port pose
position possible post pound power practice prepare present press pretty print probable problem
process produce product proper property protect prove provide pull push put quart question quick
quiet quite quotient race radio rail rain raise ran range rather reach read ready real reason
receive record red region remember repeat reply represent require rest result rich ride right ring
rise river road rock roll room root rope rose round row rub rule run safe said sail salt same sand
sat save saw say scale school science score sea search season seat second section see seed seem
segment select self sell send sense sentence separate serve set settle seven several shall shape
share sharp she sheet shell shine ship shoe shop shore short should shoulder shout show side sight
sign silent silver similar simple since sing single sister sit six size skill skin sky sleep slip
slow small smell smile snow so soft soil soldier solution solve some son song soon sound south space
speak special speech speed spell spend spoke spot spread spring square stand star start state
station stay stead steam steel step stick still stone stood stop store story straight strange
stream street stretch string strong student study subject substance subtract success such sudden
suffix sugar suggest suit summer sun supply support sure surface surprise swim syllable symbol
system table tail take talk tall teach team teeth tell temperature ten term test than thank that
the their them then there these they thick thin thing think third this those though thought
thousand three through throw thus tie time tiny tire to together told tone too took tool top total
touch toward town track trade train travel tree triangle trip trouble truck true try tube turn
twenty two type under unit until up us use usual valley value vary verb very view village visit
voice vowel wait walk wall want war warm was wash watch water wave way we wear weather week weight
well went were west what wheel when where whether which while white who whole whose why wide wife
wild will win wind window wing winter wire wish with woman women wonder wood word work world would
write written wrong wrote yard year yellow yes yet you young your
"""

_CODE = """\
def add(a, b):
    return a + b

for i in range(10):
    print(i, i * i)

{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}
{"role": "user", "content": "What is the weather in Tokyo?"}
"""


def training_corpus() -> list[str]:
    """Deterministic training text: prose, code and sentences drawn from a fixed word list."""
    rng = random.Random(20240611)  # Mersenne Twister: stable across Python versions
    words = _WORDS.split()
    lines: list[str] = []
    for _ in range(4000):
        n = rng.randint(4, 14)
        sent = [rng.choice(words) for _ in range(n)]
        sent[0] = sent[0].capitalize()
        if rng.random() < 0.3:
            sent.insert(rng.randrange(len(sent)), str(rng.randint(0, 2025)))
        lines.append(" ".join(sent) + rng.choice([".", ".", ".", "?", "!", ",", ";", ":"]))
    lines.extend(_PROSE.splitlines())
    lines.extend(_CODE.splitlines())
    lines.extend(" ".join(words[i : i + 12]) for i in range(0, len(words), 12))
    lines.extend(" ".join(w.capitalize() for w in words[i : i + 12]) for i in range(0, len(words), 12))
    return lines


def build_tokenizer(out_dir: Path, vocab_size: int = 4096) -> int:
    """Train the byte-level BPE tokenizer and write tokenizer.json + tokenizer_config.json.

    Returns the final vocabulary size (special tokens included)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        special_tokens=[AddedToken(t, special=s, normalized=False) for t, s in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    # Special tokens come first, in the order given: check the fixed ids.
    for t, i in SPECIAL_IDS.items():
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t), i)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0",
        pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
        special_tokens=[(BOS, 0)],
    )
    # The trainer marks all its tokens special; restore the per-token flags of SPECIAL_TOKENS.
    tok_json = json.loads(tok.to_str())
    for added in tok_json["added_tokens"]:
        added["special"] = SPECIAL_TOKENS[added["id"]][1]
    (out_dir / "tokenizer.json").write_text(
        json.dumps(tok_json, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )

    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": s,
        }
        for i, (t, s) in enumerate(SPECIAL_TOKENS)
    }
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 16384,
        "sp_model_kwargs": {},
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return tok.get_vocab_size(with_added_tokens=True)


# ----------------------------------------------------------------------------------------
# Safetensors (written and read by hand: numpy cannot hold float8 in safetensors' numpy API)
# ----------------------------------------------------------------------------------------

_ST_DTYPES = {"F8_E4M3": FP8, "BF16": BF16, "F32": np.float32, "I8": np.int8}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def write_safetensors(path: Path, specs: list[tuple[str, str, tuple[int, ...]]],
                      arrays: Iterator[np.ndarray], metadata: dict[str, str] | None = None) -> int:
    """Stream tensors into a safetensors file; specs (name, dtype, shape) fix the header first.

    `arrays` yields one array per spec, in order. Returns the file size in bytes."""
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape in specs:
        nbytes = math.prod(shape) * np.dtype(_ST_DTYPES[dtype]).itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for (name, dtype, shape), arr in zip(specs, arrays, strict=True):
            assert arr.shape == tuple(shape) and _ST_NAMES[arr.dtype] == dtype, (name, arr.shape, arr.dtype)
            f.write(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return 8 + len(blob) + offset


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map a safetensors file as {name: array} (float8/bf16 as ml_dtypes arrays)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = raw[a:b].view(_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


# ----------------------------------------------------------------------------------------
# Block FP8 quantisation
# ----------------------------------------------------------------------------------------

def quantize_fp8_block(w: np.ndarray, block: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """Per-block FP8 (e4m3) quantisation: scale = amax/448, q = clip(w/scale).

    Returns (q float8_e4m3fn [out, in], scale_inv float32 [ceil(out/bo), ceil(in/bi)]) such
    that w ~= q * scale_inv broadcast over each block."""
    bo, bi = block
    rows, cols = w.shape
    nr, nc = -(-rows // bo), -(-cols // bi)
    pad = np.zeros((nr * bo, nc * bi), np.float32) if (rows % bo or cols % bi) else None
    if pad is not None:
        pad[:rows, :cols] = w
        wp = pad
    else:
        wp = np.asarray(w, np.float32)
    blocks = wp.reshape(nr, bo, nc, bi)
    amax = np.abs(blocks).max(axis=(1, 3))
    scale = np.maximum(amax, 1e-12).astype(np.float32) / np.float32(FP8_MAX)
    q = blocks / scale[:, None, :, None]
    np.clip(q, -FP8_MAX, FP8_MAX, out=q)
    q = q.reshape(nr * bo, nc * bi)[:rows, :cols].astype(FP8)
    return q, scale.astype(np.float32)


def dequantize_fp8_block(q: np.ndarray, scale_inv: np.ndarray, block: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Inverse of quantize_fp8_block (float32)."""
    bo, bi = block
    s = np.repeat(np.repeat(scale_inv, bo, axis=0), bi, axis=1)[: q.shape[0], : q.shape[1]]
    return q.astype(np.float32) * s


INT4_GROUP = 128  # W4AFP8: one scale per row and 128 input columns (W4AFp8Config.group_size)
# W4AFP8 static activation scales (per tensor): FP8 max / scale covers the expert inputs' range.
W4_INPUT_SCALE = {"gate_proj": 0.05, "up_proj": 0.05, "down_proj": 0.02}


def quantize_int4_group(w: np.ndarray, group: int = INT4_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int4 per (row, group of input columns): scale = amax/7, q = round(w/scale) in
    [-8, 7], packed two per int8 (column 2k in the low nibble, 2k+1 in the high one).

    Returns (packed int8 [out, in/2], scale float32 [out, in/group])."""
    rows, cols = w.shape
    assert cols % group == 0 and group % 2 == 0, (w.shape, group)
    groups = np.asarray(w, np.float32).reshape(rows, cols // group, group)
    scale = np.maximum(np.abs(groups).max(axis=2), 1e-12).astype(np.float32) / np.float32(7.0)
    q = np.clip(np.rint(groups / scale[:, :, None]), -8, 7).astype(np.int8).reshape(rows, cols)
    packed = ((q[:, 1::2] << 4) | (q[:, 0::2] & 0xF)).astype(np.int8)
    return packed, scale


def dequantize_int4_group(packed: np.ndarray, scale: np.ndarray, group: int = INT4_GROUP) -> np.ndarray:
    """Inverse of quantize_int4_group (float32)."""
    low = (packed << 4).astype(np.int8) >> 4  # sign-extend the low nibble
    high = packed >> 4  # arithmetic shift sign-extends the high nibble
    q = np.empty((packed.shape[0], packed.shape[1] * 2), np.float32)
    q[:, 0::2], q[:, 1::2] = low, high
    return q * np.repeat(scale, group, axis=1)


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
    W4AFP8 (quant_method "w4afp8"): routed experts int4 (see quantize_int4_group), the rest FP8."""
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    quant = cfg.get("quantization_config")
    bo, bi = quant["weight_block_size"] if quant else (0, 0)
    int4_experts = bool(quant) and quant.get("quant_method") == "w4afp8"
    specs: list[tuple[str, str, tuple[int, ...]]] = []

    def fp8(name: str, out_in: tuple[int, int]) -> None:
        o, i = out_in
        if not quant:
            specs.append((f"{name}.weight", "BF16", (o, i)))
            return
        specs.append((f"{name}.weight", "F8_E4M3", (o, i)))
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
        self.block = tuple(quant["weight_block_size"]) if quant else (128, 128)
        self.tok_vocab = tokenizer_vocab
        self._quant_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._embed: np.ndarray | None = None
        self._head: np.ndarray | None = None
        layout = checkpoint_layout(cfg)
        self._shapes = {n[: -len(".weight")]: s for n, d, s in layout if d == "F8_E4M3"}
        self._int4 = {n[: -len(".weight")]: (s[0], s[1] * 2) for n, d, s in layout if d == "I8"}

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

    def fp8(self, lin: str) -> tuple[np.ndarray, np.ndarray]:
        if lin not in self._quant_cache:
            self._quant_cache.clear()
            out_in = self._shapes[lin]
            w = _gauss(self.seed, lin, out_in, _linear_std(lin, out_in, self.cfg))
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
                yield np.array(W4_INPUT_SCALE[name.split(".")[-2]], np.float32)
            elif dtype == "I8" or name[: -len(".weight_scale_inv")] in self._int4:
                yield self.int4(name.rsplit(".", 1)[0])[name.endswith(".weight_scale_inv")]
            elif name.endswith(".weight_scale_inv"):
                yield self.fp8(name[: -len(".weight_scale_inv")])[1]
            elif dtype == "F8_E4M3":
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


def _tokenizer_vocab_size(out_dir: Path) -> int | None:
    path = Path(out_dir) / "tokenizer.json"
    if not path.exists():
        return None
    tj = json.loads(path.read_text(encoding="utf-8"))
    ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj.get("added_tokens", [])]
    return max(ids) + 1


def write_checkpoint(out_dir: Path, base_config: dict, seed: int = 0, *,
                     overrides: dict | None = None, tokenizer_vocab_size: int | None = None) -> None:
    """Write config.json, generation_config.json and model.safetensors into out_dir.

    The vocabulary size comes from `tokenizer_vocab_size`, else from out_dir/tokenizer.json
    (build_tokenizer first); config.json's vocab_size is that rounded up to a multiple of 256.
    `overrides` replaces config keys (tests shrink the model with it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_vocab = tokenizer_vocab_size or _tokenizer_vocab_size(out_dir)
    if tok_vocab is None:
        raise FileNotFoundError(f"{out_dir}/tokenizer.json missing and no tokenizer_vocab_size given")
    cfg = json.loads(json.dumps(base_config))
    cfg.update(overrides or {})
    cfg["vocab_size"] = -(-tok_vocab // 256) * 256
    cfg["bos_token_id"], cfg["eos_token_id"] = SPECIAL_IDS[BOS], SPECIAL_IDS[EOS]
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    gen = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
    (out_dir / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    specs = checkpoint_layout(cfg)
    weights = _Weights(cfg, seed, tok_vocab)
    write_safetensors(out_dir / "model.safetensors", specs, weights.values(specs))


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
