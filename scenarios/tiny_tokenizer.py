"""The tiny model's tokenizer: a byte-level BPE trained on a built-in corpus.

The DeepSeek special tokens sit at fixed low ids and the DeepSeek-V3/R1 chat template (thinking
and tool-call sections) goes into tokenizer_config.json. Part of the tiny checkpoint generator
(scenarios/tiny_model.py); its output bytes are part of every recording's model digest.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

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


def written_vocab_size(out_dir: Path) -> int | None:
    """The vocabulary size (special tokens included) of out_dir/tokenizer.json, None if absent."""
    path = Path(out_dir) / "tokenizer.json"
    if not path.exists():
        return None
    tj = json.loads(path.read_text(encoding="utf-8"))
    ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj.get("added_tokens", [])]
    return max(ids) + 1
