from sglang.srt.layers.moe.moe_runner import MoeRunner, MoeRunnerConfig
from sglang.srt.layers.moe.utils import (
    DeepEPMode,
    MoeA2ABackend,
    MoeRunnerBackend,
    get_deepep_config,
    get_deepep_mode,
    get_moe_a2a_backend,
    get_moe_runner_backend,
    initialize_moe_config,
    is_tbo_enabled,
    should_skip_mlp_all_reduce,
    should_skip_post_experts_all_reduce,
    should_use_dp_reduce_scatterv,
    should_use_flashinfer_cutlass_moe_fp4_allgather,
)

__all__ = [
    "DeepEPMode",
    "MoeA2ABackend",
    "MoeRunner",
    "MoeRunnerConfig",
    "MoeRunnerBackend",
    "initialize_moe_config",
    "get_moe_a2a_backend",
    "get_moe_runner_backend",
    "get_deepep_mode",
    "should_skip_mlp_all_reduce",
    "should_skip_post_experts_all_reduce",
    "should_use_dp_reduce_scatterv",
    "should_use_flashinfer_cutlass_moe_fp4_allgather",
    "is_tbo_enabled",
    "get_deepep_config",
]
