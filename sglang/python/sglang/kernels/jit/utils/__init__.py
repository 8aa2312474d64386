"""Public interface of sglang.kernels.jit.utils."""

from sglang.kernels.jit.utils.arch import (
    get_jit_cuda_arch,
    is_arch_support_pdl,
    override_jit_cuda_arch,
)
from sglang.kernels.jit.utils.common import (
    cache_once,
    empty_sentinel,
    get_ci_test_range,
    is_hip_runtime,
    is_musa_runtime,
    lazy_register_class,
    should_run_full_tests,
)
from sglang.kernels.jit.utils.compile import KERNEL_PATH, load_jit, make_cpp_args

__all__ = [
    "empty_sentinel",
    "should_run_full_tests",
    "get_ci_test_range",
    "cache_once",
    "lazy_register_class",
    "is_hip_runtime",
    "is_musa_runtime",
    "make_cpp_args",
    "load_jit",
    "override_jit_cuda_arch",
    "get_jit_cuda_arch",
    "is_arch_support_pdl",
    "KERNEL_PATH",
]
