"""Public interface of sglang.kernels.jit.utils."""

from sglang.kernels.jit.utils.arch import (
    get_jit_cuda_arch,
    is_arch_support_pdl,
    )
from sglang.kernels.jit.utils.common import (
    cache_once,
    is_hip_runtime,
    is_musa_runtime,
    lazy_register_class,
    )
from sglang.kernels.jit.utils.compile import KERNEL_PATH, load_jit, make_cpp_args

__all__ = [
    "cache_once",
    "lazy_register_class",
    "is_hip_runtime",
    "is_musa_runtime",
    "make_cpp_args",
    "load_jit",
    "get_jit_cuda_arch",
    "is_arch_support_pdl",
    "KERNEL_PATH",
]
