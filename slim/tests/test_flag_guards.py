"""Launch flags that lead into a stub (slim/flag_guards.py), on a small tree shaped like SGLang's."""

import ast
import textwrap

from slim.flag_guards import Term, guarded_stubs, unrefused
from slim.flag_registries import lost_registrations, stubbed_entries

STUB = "    raise NotImplementedError('slim removed the body of {}: it never ran in any recording')\n"
DESTS = {"enable_lora": "--enable-lora", "attention_backend": "--attention-backend",
         "enable_hisparse": "--enable-hisparse", "use_ray": "--use-ray"}


def tree() -> dict[str, ast.Module]:
    stubs = "".join(f"def {name}(*args):\n{STUB.format(name)}\n" for name in
                    ("load_adapters", "build_ascend_pool", "validate_hisparse", "make_ray_engine", "items"))
    engine = textwrap.dedent("""\
        from sglang.srt.stubs import *

        def start(server_args):
            if server_args.enable_lora:
                load_adapters(server_args)
            pool = build_ascend_pool() if server_args.attention_backend == "ascend" else None
            backend = make_ray_engine() if server_args.use_ray else None
            server_args.use_ray and make_ray_engine()
            return {}.items()

        def check(server_args):
            if not server_args.enable_hisparse:
                return
            validate_hisparse(server_args)

        def default_path(server_args):
            if server_args.use_ray:
                return None
            else:
                make_ray_engine()
        """)
    return {"sglang/srt/stubs.py": ast.parse(stubs), "sglang/srt/engine.py": ast.parse(engine)}


def test_each_stub_call_names_the_flags_that_open_it():
    found = {(g.where, g.stub, g.terms) for g in guarded_stubs(tree(), DESTS)}
    assert found == {
        ("sglang/srt/engine.py:5", "load_adapters", (Term("--enable-lora"),)),
        ("sglang/srt/engine.py:6", "build_ascend_pool", (Term("--attention-backend", ("ascend",)),)),
        ("sglang/srt/engine.py:7", "make_ray_engine", (Term("--use-ray"),)),
        ("sglang/srt/engine.py:8", "make_ray_engine", (Term("--use-ray"),)),
        # after `if not flag: return`, the rest runs only with the flag set
        ("sglang/srt/engine.py:14", "validate_hisparse", (Term("--enable-hisparse"),)),
    }  # not `{}.items()` (a builtin method's name), not the else of `if use_ray` (the default's path)


def test_a_refused_flag_or_every_refused_value_closes_the_path():
    guards = guarded_stubs(tree(), DESTS)
    open_ = {g.stub for g in unrefused(guards, {"flag:--enable-lora", "flag:--attention-backend=ascend"})}
    assert open_ == {"make_ray_engine", "validate_hisparse"}
    assert {g.stub for g in unrefused(guards, set())} == {"load_adapters", "build_ascend_pool", "make_ray_engine",
                                                          "validate_hisparse"}


def test_a_value_whose_registration_was_deleted_must_be_refused():
    registry = textwrap.dedent("""\
        @register_attention_backend("triton")
        def create_triton(runner): ...

        @register_attention_backend("fa3")
        def create_fa3(runner): ...
        """)
    upstream = {"sglang/srt/layers/attention/attention_registry.py": ast.parse(registry)}
    slim = {"sglang/srt/layers/attention/attention_registry.py": ast.parse(registry.split("\n\n")[0])}
    lost = lost_registrations(slim, upstream, set())
    assert lost == ["flag:--attention-backend=fa3", "flag:--decode-attention-backend=fa3",
                    "flag:--prefill-attention-backend=fa3"]
    refused = {"flag:--attention-backend=fa3", "flag:--prefill-attention-backend"}
    assert lost_registrations(slim, upstream, refused) == ["flag:--decode-attention-backend=fa3"]
    assert lost_registrations(upstream, upstream, set()) == []


def test_a_moe_runner_whose_fused_function_was_deleted_must_be_refused():
    runner = ('@register_fused_func("none", "flashinfer_trtllm")\ndef none_to_trtllm(out, info, config): ...\n\n'
              '@register_fused_func("none", "triton")\ndef none_to_triton(out, info, config): ...\n')
    path = "sglang/srt/layers/moe/moe_runner/flashinfer_trtllm.py"  # any file of the runners' folder
    upstream = {path: ast.parse(runner)}
    slim = {path: ast.parse(runner.split("\n\n")[1])}
    assert lost_registrations(slim, upstream, set()) == ["flag:--moe-runner-backend=flashinfer_trtllm",
                                                         "flag:--speculative-moe-runner-backend=flashinfer_trtllm"]
    assert lost_registrations({}, {"sglang/srt/other.py": ast.parse(runner)}, set()) == []  # not its folder


def test_a_registered_class_kept_only_by_name_must_be_refused():
    quant = ("class Fp8Config:\n    def from_config(cls, config):\n        return cls()\n\n"
             "class AWQMarlinConfig:\n    def from_config(cls, config):\n    " + STUB.format("from_config") +
             '\nBASE_QUANTIZATION_METHODS: Dict[str, Type] = {"fp8": Fp8Config, "awq_marlin": AWQMarlinConfig}\n')
    trees = {"sglang/srt/layers/quantization/__init__.py": ast.parse(quant)}
    assert stubbed_entries(trees, set()) == ["flag:--quantization=awq_marlin",
                                             "flag:--speculative-draft-model-quantization=awq_marlin"]
    assert stubbed_entries(trees, {"flag:--quantization=awq_marlin",
                                   "flag:--speculative-draft-model-quantization"}) == []


def test_an_import_of_a_cut_module_under_a_flag_is_a_path_into_nothing():
    spec = textwrap.dedent("""\
        def worker(server_args):
            if server_args.use_ray:
                from sglang.srt.ray_worker import RayWorker
            if server_args.use_ray:
                try:
                    from sglang.srt.optional_thing import X
                except ImportError:
                    X = None
            from sglang.srt.stubs import items
        """)
    trees = {**tree(), "sglang/srt/spec.py": ast.parse(spec)}
    found = [(g.where, g.stub) for g in guarded_stubs(trees, DESTS) if g.where.startswith("sglang/srt/spec.py")]
    assert found == [("sglang/srt/spec.py:3", "import sglang.srt.ray_worker")]  # not the guarded, not the present


def test_environment_switches_guard_like_flags_and_only_the_listed_ones_are_let_off():
    """An env switch is a launch choice no parser sees: `envs.X.get()`, `get_bool_env_var("X")` and
    `os.environ.get("X")` tests lead into stubs as flags do; slim/env_switches.py lists those slim
    check need not fail on. A package without `__init__.py` is present when its modules are."""
    spec = textwrap.dedent("""\
        import os

        def topk(x):
            if envs.SGLANG_OPT_USE_JIT_KERNEL_GROUPED_TOPK.get():
                from sglang.kernels.moe_fused_gate import gate
            if get_bool_env_var("SGLANG_MM_BUFFER_SIZE_MB") and x:
                load_adapters(x)
            if os.environ.get("SGLANG_KV_CANARY"):
                from sglang.srt import stubs
        """)
    trees = {**tree(), "sglang/srt/spec.py": ast.parse(spec)}
    found = [g for g in guarded_stubs(trees, DESTS) if g.where.startswith("sglang/srt/spec.py")]
    assert [(g.where, g.stub, g.terms) for g in found] == [
        ("sglang/srt/spec.py:5", "import sglang.kernels.moe_fused_gate",
         (Term("env:SGLANG_OPT_USE_JIT_KERNEL_GROUPED_TOPK"),)),
        ("sglang/srt/spec.py:7", "load_adapters", (Term("env:SGLANG_MM_BUFFER_SIZE_MB"),))]
    assert [g.stub for g in unrefused(found, set())] == ["import sglang.kernels.moe_fused_gate"]


def test_a_module_level_name_bound_to_a_switch_guards_as_the_switch_does():
    spec = textwrap.dedent("""\
        _USE_FAST = get_bool_env_var("SGLANG_FAST") and _is_cuda
        _BOTH = get_bool_env_var("A") or get_bool_env_var("B")

        def run(x):
            if _USE_FAST:
                load_adapters(x)
            if _BOTH:
                load_adapters(x)
        """)
    trees = {**tree(), "sglang/srt/spec.py": ast.parse(spec)}
    found = [(g.where, g.terms) for g in guarded_stubs(trees, DESTS) if g.where.startswith("sglang/srt/spec.py")]
    assert found == [("sglang/srt/spec.py:6", (Term("env:SGLANG_FAST"),))]  # two switches: no single alias
