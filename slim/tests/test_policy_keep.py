"""`slim apply --keep`: a checked entry appended to the keep-policy."""


import pytest

from slim.errors import SlimError
from slim.policy import add_keep, load_policy

MODULE = '''
class Backend:
    def forward(self):
        def inner():
            pass

def helper():
    pass
'''


@pytest.fixture
def upstream(tmp_path):
    path = tmp_path / "up" / "sglang" / "srt" / "layers" / "attention"
    path.mkdir(parents=True)
    (path / "nsa_backend.py").write_text(MODULE)
    return tmp_path / "up"


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[keep]]\npath = "sglang/srt/x.py"\nreason = "r"\nscenario = "s"\n')
    return path


def test_added_entries_load_back_with_their_reason_and_scenario(upstream, policy):
    add_keep("sglang/srt/layers/attention/nsa_backend.py::Backend.forward", 'DSA "sparse" path', "dsv32_tp1",
             upstream, policy)
    add_keep("sglang/srt/layers/attention/nsa_backend.py", "whole file", "dsv32_tp1", upstream, policy)
    keeps = load_policy(policy).keeps
    assert len(keeps) == 3
    assert keeps[1].qualname == "Backend.forward" and keeps[1].reason == 'DSA "sparse" path'
    assert keeps[1].covers("sglang/srt/layers/attention/nsa_backend.py", "Backend.forward.inner")
    assert keeps[2].qualname is None and keeps[2].scenario == "dsv32_tp1"


@pytest.mark.parametrize(("symbol", "reason", "scenario", "error"), [
    ("sglang/srt/layers/attention/nsa_backend.py::helper", "", "s", "give a --reason"),
    ("sglang/srt/layers/attention/nsa_backend.py::helper", "r", " ", "give a --reason"),
    ("sglang/srt/layers/attention/missing.py", "r", "s", "no file sglang/srt/layers/attention/missing.py"),
    ("sglang/srt/layers/attention/nsa_backend.py::Backend.backward", "r", "s", "defines no Backend.backward"),
    ("sglang/srt/x.py", "r", "s", "no file"),
])
def test_bad_keeps_are_one_line_errors_and_write_nothing(upstream, policy, symbol, reason, scenario, error):
    before = policy.read_text()
    with pytest.raises(SlimError, match=error):
        add_keep(symbol, reason, scenario, upstream, policy)
    assert policy.read_text() == before


def test_a_duplicate_keep_is_refused(upstream, policy):
    add_keep("sglang/srt/layers/attention/nsa_backend.py::helper", "r", "s", upstream, policy)
    with pytest.raises(SlimError, match="already in"):
        add_keep("sglang/srt/layers/attention/nsa_backend.py::helper", "r", "s", upstream, policy)


def test_sampled_paths_load_with_their_reason_and_a_reasonless_one_is_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[sampled]]\npaths = ["sglang/srt/managers/", "sglang/srt/layers/sampler.py"]\n'
                    'reason = "per request"\n')
    policy = load_policy(path)
    assert policy.sampled_for("sglang/srt/managers/scheduler.py").reason == "per request"
    assert policy.sampled_for("sglang/srt/layers/sampler.py") and not policy.sampled_for("sglang/srt/layers/linear.py")
    path.write_text('[[sampled]]\npaths = ["sglang/srt/managers/"]\n')
    with pytest.raises(SlimError, match="sampled entry 1 lacks reason"):
        load_policy(path)


def test_off_surface_paths_load_with_their_reason_and_a_reasonless_one_is_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[[off_surface]]\npaths = ["sglang/srt/lora/"]\nreason = "no LoRA"\n'
                    '[[sampled]]\npaths = ["sglang/srt/managers/"]\nreason = "per request"\n')
    policy = load_policy(path)
    assert policy.off_surface_for("sglang/srt/lora/layers.py").reason == "no LoRA"
    assert policy.off_surface_for("sglang/srt/layers/linear.py") is None
    assert policy.off_surface_for("sglang/srt/managers/x.py") is None  # request handling is on the surface
    path.write_text('[[off_surface]]\npaths = ["sglang/srt/lora/"]\n')
    with pytest.raises(SlimError, match="off_surface entry 1 lacks reason"):
        load_policy(path)


def surface_policy_with_whole_ep(tmp_path, off_surface: str, reason: str):
    """A policy: the 2-GPU folder sglang/srt/ep/ whole, and one [[off_surface]] path."""
    path = tmp_path / "policy.toml"
    path.write_text('[[whole]]\npaths = ["sglang/srt/ep/"]\nreason = "2 GPUs"\n'
                    f'scenario = "r1_fp8_ep2"\n[[off_surface]]\npaths = ["{off_surface}"]\nreason = "{reason}"\n')
    return load_policy(path)


def test_an_off_surface_qualname_judges_only_that_def_and_its_members(tmp_path):
    policy = surface_policy_with_whole_ep(tmp_path, "sglang/srt/ep/layer.py::EPMoE.forward_mamba", "not DeepSeek")
    layer = "sglang/srt/ep/layer.py"
    assert policy.off_surface_for(layer, "EPMoE.forward_mamba").path == "sglang/srt/ep/layer.py::EPMoE.forward_mamba"
    assert policy.off_surface_for(layer, "EPMoE.forward_mamba.inner") is not None
    assert policy.off_surface_for(layer, "EPMoE.forward_mamba_v2") is None
    assert policy.off_surface_for(layer, "EPMoE") is None
    assert policy.off_surface_for(layer) is None  # a file alone: only whole-file entries
    assert policy.whole_for(layer, "EPMoE") is not None
    assert policy.whole_for(layer, "EPMoE.forward_mamba") is None


def test_an_off_surface_file_inside_a_whole_folder_is_judged_off_the_surface(tmp_path):
    policy = surface_policy_with_whole_ep(tmp_path, "sglang/srt/ep/amd.py", "not NVIDIA")
    assert policy.whole_for("sglang/srt/ep/deepep.py").reason == "2 GPUs"
    assert policy.whole_for("sglang/srt/ep/amd.py") is None and policy.off_surface_for("sglang/srt/ep/amd.py")


def test_a_plan_mode_table_is_refused(tmp_path):
    """One planner: a policy that still picks a mode would silently be planned otherwise than it says."""
    path = tmp_path / "policy.toml"
    path.write_text('[plan]\nmode = "lean"\n')
    with pytest.raises(SlimError, match=r"\[plan\] is gone"):
        load_policy(path)
