"""`slim check` on registrations the plan deleted while kept code looks their keys up (slim/check_registry.py),
on a small tree shaped like the warm-up bug: `execute_warmups` kept, `@warmup("voice")` gone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from slim import check_registry as regs
from slim import upstream as up
from slim.check import Modules, check_tree
from slim.check_registry import check_registry, registrations
from slim.module_names import module_name
from slim.policy import OffSurface, Policy, load_policy
from slim.surface import read_inventory, removed_items

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = up.default_tree(up.load_pin())

REGISTRY = "sglang/srt/entrypoints/warmup.py"
UPSTREAM_REGISTRY = '''_warmup_registry = {}


def warmup(name):
    def decorator(fn):
        _warmup_registry[name] = fn
        return fn

    return decorator


@warmup("kept")
async def kept(manager):
    return manager


@warmup("voice")
async def voice(manager):
    return manager
'''
SLIM_REGISTRY = UPSTREAM_REGISTRY.split('@warmup("voice")')[0]  # the plan deleted voice (never run)
LOOKUP = ("sglang/srt/entrypoints/engine.py",  # kept code that looks a key up: a KeyError once it is gone
          "from sglang.srt.entrypoints.warmup import _warmup_registry\n\n\n"
          "async def execute_warmups(names, manager):\n    for name in names:\n"
          "        await _warmup_registry[name](manager)\n")
VOICE_ERROR = ("sglang/srt/entrypoints/warmup.py (upstream line 18): @warmup('voice') registered voice, which slim "
               "deleted, and the front door accepts the key: kept code that looks it up fails where upstream runs "
               "it (keep sglang/srt/entrypoints/warmup.py::voice in slim/policy.toml with its reason, or refuse the "
               "key in slim/surface.toml)")
BACKENDS = ("sglang/srt/layers/attention/attention_registry.py",
            "ATTENTION_BACKENDS = {}\n\n\ndef register_attention_backend(name):\n    def decorator(fn):\n"
            "        ATTENTION_BACKENDS[name] = fn\n        return fn\n\n    return decorator\n\n\n"
            '@register_attention_backend("triton")\ndef create_triton_backend(runner):\n    return runner\n\n\n'
            '@register_attention_backend("fa3")\ndef create_fa3_backend(runner):\n    return runner\n')
BACKEND_VALUES = {"flag:--attention-backend=triton", "flag:--attention-backend=fa3"}


@pytest.fixture
def run(tmp_path):
    """run(slim, upstream, refused, values, policy, flags) -> check_registry's report over two trees given as
    {file: source}: the slimmed one, and upstream's (the slimmed files, with `upstream`'s own in their place or
    beside them); `refused`/`values`: surface ids; the surface's architecture: DeepseekV3ForCausalLM."""
    def check(slim: dict[str, str], upstream: dict[str, str] | None = None, refused=(), values=(),
              policy: Policy | None = None, flags: bool = True):
        trees = []
        for name, files in (("slim", slim), ("upstream", {**slim, **(upstream or {})})):
            for rel, text in files.items():
                (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name / rel).write_text(text)
            trees.append(Modules(tmp_path / name))
        return check_registry({module_name(rel): rel for rel in slim}, trees[0].tree, trees[1].tree,
                              policy or Policy(), (set(refused), set(values)) if flags else None,
                              (trees[0].files, trees[1].files), frozenset({"DeepseekV3ForCausalLM"}))

    return check


def test_a_deleted_registration_under_an_accepted_key_fails(run):
    report = run({REGISTRY: SLIM_REGISTRY, LOOKUP[0]: LOOKUP[1]}, {REGISTRY: UPSTREAM_REGISTRY})
    assert report.findings == [VOICE_ERROR] and report.allowed == {}


def test_check_tree_reports_it_with_the_launch_flags_and_counts_it_without(tmp_path):
    tree, upstream = tmp_path / "slim" / "python", tmp_path / "upstream"
    files = {"sglang/__init__.py": "", "sglang/srt/__init__.py": "", "sglang/srt/entrypoints/__init__.py": "",
             LOOKUP[0]: LOOKUP[1]}
    for root, registry in ((tree, SLIM_REGISTRY), (upstream, UPSTREAM_REGISTRY)):
        for rel, text in {**files, REGISTRY: registry}.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    (tree / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    assert check_tree(tree.parent, upstream, Policy(), flags=({}, set(), set())).errors == [VOICE_ERROR]
    assert check_tree(tree.parent, upstream, Policy()).notes == {regs.NO_FLAGS: 1}


def test_a_key_every_selecting_flag_refuses_passes_and_one_another_flag_accepts_fails(run):
    """--attention-backend offers every registered backend, so it selects from the registry; fa3 refused there
    refuses the key. --decode-attention-backend offering both selects too: accepting fa3 there fails it."""
    slim = BACKENDS[1].split('@register_attention_backend("fa3")')[0]
    refused = {"flag:--attention-backend=fa3"}
    report = run({BACKENDS[0]: slim}, {BACKENDS[0]: BACKENDS[1]}, refused, BACKEND_VALUES)
    assert report.findings == [] and report.allowed == {regs.FLAG_VALUES: 1}
    decode = {v.replace("--attention", "--decode-attention") for v in BACKEND_VALUES}
    report = run({BACKENDS[0]: slim}, {BACKENDS[0]: BACKENDS[1]}, refused, BACKEND_VALUES | decode)
    assert [f.split(": @")[1].split(" registered")[0] for f in report.findings] == ["register_attention_backend('fa3')"]


def test_a_refused_value_of_a_flag_that_selects_nothing_there_refuses_no_key(run):
    """--load-format offers "mistral" but not "hf": it does not select config parsers, so refusing
    --load-format=mistral says nothing about @register_model_config_parser("mistral")."""
    upstream = ("PARSERS = {}\n\n\ndef register_model_config_parser(name):\n    return lambda cls: PARSERS.setdefault("
                "name, cls)\n\n\n@register_model_config_parser(\"hf\")\nclass Hf:\n    pass\n\n\n"
                "@register_model_config_parser(\"mistral\")\nclass Mistral:\n    pass\n")
    slim = upstream.split('@register_model_config_parser("mistral")')[0]
    rel = "sglang/srt/utils/hf_transformers/config.py"
    report = run({rel: slim}, {rel: upstream}, {"flag:--load-format=mistral"}, {"flag:--load-format=mistral"})
    assert len(report.findings) == 1 and report.allowed == {}


def test_a_def_policy_puts_off_the_surface_passes(run):
    policy = Policy(off_surface=(OffSurface(REGISTRY, "speech models' warm-ups", "voice"),))
    report = run({REGISTRY: SLIM_REGISTRY}, {REGISTRY: UPSTREAM_REGISTRY}, policy=policy)
    assert report.findings == [] and report.allowed == {regs.OFF_SURFACE: 1}


def test_a_route_passes_only_when_the_front_door_refuses_each_of_its_methods(run):
    rel = "sglang/srt/entrypoints/http_server.py"
    upstream = ("from fastapi import FastAPI\n\napp = FastAPI()\n\n\n"
                '@app.api_route("/v1/rerank", methods=["POST", "PUT"])\nasync def rerank(request):\n    return 1\n')
    slim = upstream.split("@app")[0]
    both = {"route:POST /v1/rerank", "route:PUT /v1/rerank"}
    assert run({rel: slim}, {rel: upstream}, both).allowed == {regs.ROUTES: 1}
    assert len(run({rel: slim}, {rel: upstream}, both - {"route:PUT /v1/rerank"}).findings) == 1


def test_architectures_of_other_model_families_pass_and_the_surfaces_fail(run):
    rel = "sglang/srt/arg_groups/overrides.py"
    upstream = ("OVERRIDES = {}\n\n\ndef _register_for(*architectures):\n    return lambda fn: fn\n\n\n"
                '@_register_for("Qwen3MoeForCausalLM", "Qwen3NextForCausalLM")\ndef _qwen(args):\n    return {}\n\n\n'
                '@_register_for("DeepseekV3ForCausalLM")\ndef _deepseek(args):\n    return {}\n')
    models = {"sglang/srt/models/qwen3_moe.py": "class Qwen3MoeForCausalLM:\n    pass\n\n\n"
                                                "EntryClass = [Qwen3MoeForCausalLM]\n",
              "sglang/srt/models/qwen3_next.py": "class Qwen3NextForCausalLM:\n    pass\n\n\n"
                                                 "EntryClass = Qwen3NextForCausalLM\n",
              "sglang/srt/models/deepseek_v2.py": "class DeepseekV3ForCausalLM:\n    pass\n\n\n"
                                                  "EntryClass = [DeepseekV3ForCausalLM]\n"}
    report = run({rel: upstream.split("@_register_for")[0]}, {rel: upstream, **models})
    assert report.allowed == {regs.FAMILIES: 1}
    assert [f.split(" registered ")[1].split(",")[0] for f in report.findings] == ["_deepseek"]


def test_a_registration_on_a_hip_branch_is_dead_on_nvidia(run):
    upstream = UPSTREAM_REGISTRY.replace('@warmup("voice")\nasync def voice(manager):\n    return manager\n',
                                         'if _is_hip:\n\n    @warmup("voice")\n    async def voice(manager):\n'
                                         '        return manager\n')
    upstream = "from sglang.srt.utils import is_hip\n\n_is_hip = is_hip()\n" + upstream
    slim = "from sglang.srt.utils import is_hip\n\n_is_hip = is_hip()\n" + SLIM_REGISTRY
    assert run({REGISTRY: slim}, {REGISTRY: upstream}).allowed == {regs.FOLDED: 1}


def test_a_torch_fake_passes_only_while_no_kept_code_names_its_op(run):
    rel = "sglang/srt/layers/quantization/int8.py"
    upstream = ("from sglang.srt.utils.patch_torch import register_fake_if_exists\n\n\n"
                '@register_fake_if_exists("sgl_kernel::int8_scaled_mm")\ndef _fake(a, b):\n    return a\n')
    slim = upstream.split("@register")[0]
    assert run({rel: slim}, {rel: upstream}).allowed == {regs.FAKES: 1}
    caller = ("sglang/srt/layers/linear.py", "from sgl_kernel import int8_scaled_mm\n\n\n"
                                             "def apply(a, b):\n    return int8_scaled_mm(a, b)\n")
    assert len(run({rel: slim, caller[0]: caller[1]}, {rel: upstream}).findings) == 1


def test_a_def_that_always_reaches_an_off_surface_module_passes_and_one_that_may_not_fails(run):
    policy = Policy(off_surface=(OffSurface("sglang/srt/entrypoints/openai/transcription_adapters/", "speech"),))
    always = UPSTREAM_REGISTRY.replace(
        "async def voice(manager):\n",
        "async def voice(manager):\n    from sglang.srt.entrypoints.openai.transcription_adapters.whisper import X\n\n")
    assert run({REGISTRY: SLIM_REGISTRY}, {REGISTRY: always}, policy=policy).allowed == {regs.BODIES: 1}
    branch = always.replace("    from sglang.srt.entrypoints.openai.transcription_adapters",
                            "    if manager:\n        from sglang.srt.entrypoints.openai.transcription_adapters")
    assert len(run({REGISTRY: SLIM_REGISTRY}, {REGISTRY: branch}, policy=policy).findings) == 1


def test_registrations_are_string_keyed_decorator_calls_of_module_level_defs():
    tree = ast.parse('@cache\ndef a():\n    pass\n\n\n@lru_cache(maxsize=2)\ndef b():\n    pass\n\n\n'
                     '@register_custom_op(op_name="c")\ndef c():\n    pass\n\n\ntry:\n\n'
                     '    @register_x("k1", "k2")\n    class D:\n        @app.get("/inner")\n        def e(self):\n'
                     '            pass\nexcept ImportError:\n    pass\n')
    assert [(r.decorator, r.keys, r.name) for r in registrations("x.py", tree)] == [("register_x", ("k1", "k2"), "D")]


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream sglang not fetched")
def test_the_committed_tree_deletes_no_registration_of_a_key_the_front_door_accepts():
    """The committed tree against upstream: every deleted registration is allowed, and every entry
    NOT_LOOKED_UP and AWAITING_KEEP judge by hand is still a deleted registration (else drop it)."""
    tree = REPO / "sglang" / "python"
    slim, upstream = Modules(tree), Modules(UPSTREAM)
    rels = {module: path.relative_to(tree).as_posix() for module, path in slim.files.items()}
    inventory = read_inventory(REPO / "coverage_db", up.load_pin().version)["items"]
    flags = {row["id"] for row in removed_items()}, {i["id"] for i in inventory if i["kind"] == "flag_value"}
    report = check_registry(rels, slim.tree, upstream.tree, load_policy(), flags, (slim.files, upstream.files))
    assert report.findings == [], report.findings[:10]
    deleted = set()
    for module, rel in rels.items():
        if (before := upstream.tree(module)) is not None:
            kept = {r.identity for r in registrations(rel, slim.tree(module))}
            deleted |= {r.path for r in registrations(rel, before) if r.identity not in kept}
    assert set(regs.NOT_LOOKED_UP) | set(regs.AWAITING_KEEP) <= deleted
