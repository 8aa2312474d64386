"""Missing-symbol errors in a slimmed server's log, mapped back to the plan entries that removed them."""

import json

import pytest

from slim.diagnose import diagnose, load_plan_json, parse_log, sglang_path
from slim.errors import SlimError
from slim.policy import OffSurface, Policy
from slim.reach import OFF_SURFACE_STUB

# A plan in `slim plan --json` form, entries taken from the real plan of upstream 0.5.17.
PLAN = {
    "recordings": ["dsv3_fp8_tp1/20261123T000000Z-h100"],
    "files": [
        {"path": "sglang/srt/layers/quantization/__init__.py", "keep": True, "reason": "imported by dsv3_fp8_tp1"},
        {"path": "sglang/srt/layers/quantization/mxfp8_block_convert.py", "keep": False,
         "reason": "never imported in any recording"},
        {"path": "sglang/srt/layers/attention/nsa/__init__.py", "keep": False,
         "reason": "never imported in any recording"},
        {"path": "sglang/srt/layers/attention/nsa/utils.py", "keep": False,
         "reason": "never imported in any recording"},
        {"path": "sglang/srt/utils/common.py", "keep": True, "reason": "imported by dsv3_fp8_tp1"},
    ],
    "defs": [
        {"file": "sglang/srt/utils/common.py", "qualname": "create_device_stream", "line": 557, "kind": "function",
         "action": "delete", "reason": "never run in any recording", "lines": 5},
        {"file": "sglang/srt/utils/common.py", "qualname": "get_bool_env_var", "line": 80, "kind": "function",
         "action": "keep", "reason": "run in dsv3_fp8_tp1", "lines": 5},
        {"file": "sglang/kernels/ops/attention/dsa/index_buf_accessor.py", "qualname": "GetK.torch_fast", "line": 58,
         "kind": "method", "action": "delete", "reason": "never run in any recording", "lines": 29},
        {"file": "sglang/srt/models/llama.py", "qualname": "Phi3ForCausalLM", "line": 700, "kind": "class",
         "action": "delete", "reason": "never run in any recording", "lines": 12},
    ],
    "edits": {"sglang/srt/models/llama.py": {"helpers": [], "constants": [], "registry": ["Phi3ForCausalLM"]}},
    "policy": [],
}

SITE = "/tmp/slim-tree/python/sglang"
LOG = f"""[2026-11-23 10:01:02] server_args=ServerArgs(model_path='/root/.cache/slim/models/dsv3')
Process SchedulerProcess-1:
Traceback (most recent call last):
  File "/usr/lib/python3.12/multiprocessing/process.py", line 314, in _bootstrap
    self.run()
  File "{SITE}/srt/managers/scheduler.py", line 2901, in run_scheduler_process
    scheduler = Scheduler(server_args, port_args, gpu_id, tp_rank)
  File "{SITE}/srt/layers/quantization/__init__.py", line 40, in <module>
    from sglang.srt.layers.quantization.mxfp8_block_convert import convert_to_mxfp8
ModuleNotFoundError: No module named 'sglang.srt.layers.quantization.mxfp8_block_convert'
[2026-11-23 10:01:03] Scheduler hit an exception: Traceback (most recent call last):
  File "{SITE}/srt/model_executor/model_runner.py", line 512, in initialize
    stream = create_device_stream(self.device)
  File "{SITE}/srt/utils/common.py", line 901, in helper
    return create_device_stream(device)
NameError: name 'create_device_stream' is not defined. Did you mean: 'create_device_streams'?
Traceback (most recent call last):
  File "{SITE}/srt/entrypoints/http_server.py", line 88, in <module>
    sglang.srt.utils.create_device_stream()
AttributeError: module 'sglang.srt.utils' has no attribute 'create_device_stream'
  File "{SITE}/srt/model_loader/utils.py", line 90, in get_model_architecture
    return ModelRegistry.models['Phi3ForCausalLM']
KeyError: 'Phi3ForCausalLM'
  File "{SITE}/srt/layers/attention/flashattention_backend.py", line 12, in <module>
    from sglang.srt.layers.attention.nsa.utils import is_nsa_enable_prefill_cp
ModuleNotFoundError: No module named 'sglang.srt.layers.attention.nsa'
  File "{SITE}/kernels/ops/attention/dsa/index_buf_accessor.py", line 40, in execute
    return cls.torch_fast(pool, buf)
AttributeError: type object 'GetK' has no attribute 'torch_fast'
  File "/opt/rt/deps/site/transformers/utils/import_utils.py", line 20, in <module>
ModuleNotFoundError: No module named 'vllm'
"""


def test_sglang_path_cuts_any_install_prefix():
    assert sglang_path(f"{SITE}/srt/utils/common.py") == "sglang/srt/utils/common.py"
    assert sglang_path("/opt/rt/up/site/sglang/srt/server_args.py") == "sglang/srt/server_args.py"
    assert sglang_path("/usr/lib/python3.12/multiprocessing/process.py") is None


def test_parse_log_finds_each_missing_symbol_with_its_innermost_sglang_frame():
    missing = parse_log(LOG)
    assert [(m.kind, m.name) for m in missing] == [
        ("module", "sglang.srt.layers.quantization.mxfp8_block_convert"),
        ("name", "create_device_stream"),
        ("name", "create_device_stream"),
        ("registry", "Phi3ForCausalLM"),
        ("module", "sglang.srt.layers.attention.nsa"),
        ("member", "torch_fast"),
        ("module", "vllm"),
    ]
    assert missing[1].file == "sglang/srt/utils/common.py" and missing[1].module is None
    assert missing[2].module == "sglang.srt.utils"
    assert missing[5].owner == "GetK"


def test_a_repeated_traceback_is_reported_once():
    assert len(parse_log(LOG + LOG)) == len(parse_log(LOG))


def test_each_finding_names_the_plan_entry_and_its_reason():
    found = {(f.missing.kind, f.missing.name, f.missing.module): (f.entry, f.reason) for f in diagnose(LOG, PLAN)}
    never = "never imported in any recording"
    assert found[("module", "sglang.srt.layers.quantization.mxfp8_block_convert", None)] == (
        "sglang/srt/layers/quantization/mxfp8_block_convert.py", never)
    # a removed package: its __init__ is the entry, whatever submodule was asked for
    assert found[("module", "sglang.srt.layers.attention.nsa", None)] == (
        "sglang/srt/layers/attention/nsa/__init__.py", never)
    deleted = ("sglang/srt/utils/common.py::create_device_stream", "never run in any recording")
    assert found[("name", "create_device_stream", None)] == deleted
    assert found[("name", "create_device_stream", "sglang.srt.utils")] == deleted  # re-exported by the package
    assert found[("registry", "Phi3ForCausalLM", None)] == (
        "sglang/srt/models/llama.py::Phi3ForCausalLM", "never run in any recording")
    assert found[("member", "torch_fast", None)][0] == (
        "sglang/kernels/ops/attention/dsa/index_buf_accessor.py::GetK.torch_fast")
    assert found[("module", "vllm", None)] == (None, None)


def test_a_kept_def_or_an_unrelated_key_is_not_blamed_on_the_plan():
    log = ("NameError: name 'get_bool_env_var' is not defined\n"
           "KeyError: 'create_device_stream'\n"
           "AttributeError: 'NoneType' object has no attribute 'shape'\n")
    assert [f.entry for f in diagnose(log, PLAN)] == [None, None, None]


def test_finding_line_gives_the_keep_command_and_the_scenario():
    finding = diagnose(LOG, PLAN)[0]
    line = finding.line("dsv3_fp8_tp1")
    assert line.startswith("ModuleNotFoundError: module sglang.srt.layers.quantization.mxfp8_block_convert: removed by "
                           "plan entry sglang/srt/layers/quantization/mxfp8_block_convert.py")
    assert "slim apply --keep sglang/srt/layers/quantization/mxfp8_block_convert.py --reason" in line
    assert "slim record --scenario dsv3_fp8_tp1" in line
    assert "\n" not in line
    unrelated = diagnose("ModuleNotFoundError: No module named 'vllm'\n", PLAN)[0]
    assert "no plan entry removed it" in unrelated.line("dsv3_fp8_tp1")


def test_a_called_stub_is_mapped_to_its_plan_entry():
    stub = {"file": "sglang/srt/mem_cache/evict_policy.py", "qualname": "LRUStrategy.get_priority", "line": 20,
            "kind": "method", "action": "stub", "lines": 3,
            "reason": "stub (named by kept code, never run, nothing in its module ran: the body raises)"}
    log = (f'  File "{SITE}/srt/mem_cache/evict_policy.py", line 21, in get_priority\n'
           "NotImplementedError: slim removed the body of LRUStrategy.get_priority: it never ran in any "
           "recording (see sglang/REMOVED.md)\n")
    [finding] = diagnose(log, {**PLAN, "defs": PLAN["defs"] + [stub]})
    assert finding.missing.kind == "stub" and finding.missing.name == "LRUStrategy.get_priority"
    assert finding.entry == "sglang/srt/mem_cache/evict_policy.py::LRUStrategy.get_priority"
    assert finding.line("dsv3_fp8_tp1").startswith("NotImplementedError: LRUStrategy.get_priority (in ")


def test_a_hollowed_class_is_mapped_to_its_cut_abstract_implementations():
    """A class kept only by name loses the bodies no recording ran, among them its implementations of
    its base's abstract methods: instantiating it names each, mapped to the entry that cut it (the
    log line of a real run: --moe-runner-backend deep_gemm on the tree planned without it)."""
    cut = [{"file": "sglang/srt/layers/moe/moe_runner/deep_gemm.py", "qualname": f"DeepGemmRunnerCore.{name}",
            "line": line, "kind": "method", "action": "delete", "lines": 3, "reason": "never run in any recording"}
           for name, line in (("run", 181), ("runner_backend", 747))]
    log = (f'  File "{SITE}/srt/layers/moe/fused_moe_triton/layer.py", line 301, in __init__\n'
           "TypeError: Can't instantiate abstract class DeepGemmRunnerCore without an implementation for "
           "abstract methods 'run', 'runner_backend'\n")
    findings = diagnose(log, {**PLAN, "defs": PLAN["defs"] + cut})
    assert [f.entry for f in findings] == ["sglang/srt/layers/moe/moe_runner/deep_gemm.py::DeepGemmRunnerCore.run",
                                           "sglang/srt/layers/moe/moe_runner/deep_gemm.py::"
                                           "DeepGemmRunnerCore.runner_backend"]
    assert findings[0].line("dsv3_fp8_tp1_moe_deepgemm").startswith("TypeError: run (in DeepGemmRunnerCore): removed")
    older = "TypeError: Can't instantiate abstract class DeepGemmRunnerCore with abstract method run\n"
    assert [m.name for m in parse_log(older)] == ["run"]


def test_a_called_line_stub_off_the_surface_names_its_policy_path():
    """A def stubbed on line evidence sits under an [[off_surface]] path: if a run
    calls it, that feature was in use after all, and the finding says which path to take out."""
    stub = {"file": "sglang/srt/lora/lora_registry.py", "qualname": "LoRARegistry.acquire", "line": 126,
            "kind": "method", "action": "stub", "lines": 12, "reason": str(OFF_SURFACE_STUB)}
    log = (f'  File "{SITE}/srt/lora/lora_registry.py", line 127, in acquire\n'
           "NotImplementedError: slim removed the body of LoRARegistry.acquire: it never ran in any "
           "recording (see sglang/REMOVED.md)\n")
    plan = {**PLAN, "defs": PLAN["defs"] + [stub]}
    off = OffSurface("sglang/srt/lora/", "no LoRA scenario")
    [finding] = diagnose(log, plan, Policy(off_surface=(off,)))
    assert finding.off_surface == "sglang/srt/lora/"
    assert "take sglang/srt/lora/ out of slim/policy.toml's [[off_surface]]" in finding.line("dsv3_fp8_tp1")
    assert diagnose(log, plan, Policy())[0].off_surface is None
    assert diagnose(log, plan)[0].off_surface is None


def test_a_foreign_json_is_a_one_line_error(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"files": []}))
    with pytest.raises(SlimError, match="not a `slim plan --json` plan"):
        diagnose("", load_plan_json(path))
    path.write_text("{")
    with pytest.raises(SlimError, match="plan .*plan.json"):
        load_plan_json(path)


def test_verify_diagnosis_maps_the_logs_or_says_why_it_cannot(tmp_path):
    from slim.verify import diagnosis

    (tmp_path / "dsv3_fp8_tp1.slim.log").write_text(LOG)
    (tmp_path / "other.slim.log").write_text("NameError: name 'unrelated' is not defined\n")
    lines = diagnosis(tmp_path, "dsv3_fp8_tp1", lambda: PLAN)
    assert len(lines) == 7 and "mxfp8_block_convert.py (never imported in any recording)" in lines[0]

    def no_upstream():
        raise SlimError("no upstream tree at /nowhere")
    unmapped = diagnosis(tmp_path, "dsv3_fp8_tp1", no_upstream)
    assert unmapped[0] == ("ModuleNotFoundError: No module named 'sglang.srt.layers.quantization.mxfp8_block_convert' "
                           "(not mapped to the plan: no upstream tree at /nowhere; pass --plan FILE)")
    (tmp_path / "dsv3_fp8_tp1.slim.log").write_text("server exited\n")
    assert diagnosis(tmp_path, "dsv3_fp8_tp1", no_upstream) == []


def test_verify_diagnosis_without_the_surface_inventory_still_maps_to_the_plan(tmp_path, monkeypatch):
    # A device call that leaves coverage_db/surface/ behind: load_policy cannot build the front door.
    # The failed verify must still write its report with the plan mapping (2026-12-07: it did not).
    import slim.verify

    def no_inventory():
        raise SlimError("no surface inventory at /nowhere/inventory.json: run `slim surface --derive`")
    monkeypatch.setattr(slim.verify, "load_policy", no_inventory)
    (tmp_path / "dsv3_fp8_tp1.slim.log").write_text(LOG)
    lines = slim.verify.diagnosis(tmp_path, "dsv3_fp8_tp1", lambda: PLAN)
    assert len(lines) == 7 and "mxfp8_block_convert.py (never imported in any recording)" in lines[0]
