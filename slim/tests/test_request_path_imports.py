"""Modules request handling imports lazily, and those kept code loads from [[whole]] paths, join the plan;
platform constants fold past shadowing parameters."""

import ast

from slim.defs import platform_names
from slim.plan import request_path_imports, whole_path_imports
from slim.policy import OffSurface, Policy, Sampled, Whole
from slim.reasons import Reason, Why

POLICY = Policy(sampled=(Sampled("sglang/srt/entrypoints/", "request handling"),),
                off_surface=(OffSurface("sglang/srt/npu/", "not NVIDIA"),))
FILES = {
    "sglang/srt/entrypoints/http.py": ("def serve(ssl):\n    if ssl:\n"
                                       "        from sglang.srt.entrypoints.tls import R\n"
                                       "    from sglang.srt.npu.pool import P\n    return R, P\n"),
    "sglang/srt/entrypoints/tls.py": "from sglang.srt.utils.certs import load\n\nR = load\n",
    "sglang/srt/utils/certs.py": "def load():\n    return 1\n",
    "sglang/srt/npu/pool.py": "P = 1\n",
    "sglang/srt/layers/other.py": "def f():\n    from sglang.srt.utils.unused import g\n",
    "sglang/srt/utils/unused.py": "g = 1\n",
}


def test_lazy_imports_of_request_handling_join_the_plan_with_what_they_load(tmp_path):
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    imported = {"sglang/srt/entrypoints/http.py", "sglang/srt/layers/other.py"}
    added = request_path_imports(tmp_path, sorted(FILES), imported, POLICY)
    lazy = Reason(Why.LAZY_ON_REQUEST_PATH, "sglang/srt/entrypoints/http.py")
    assert added == {"sglang/srt/entrypoints/tls.py": lazy,
                     "sglang/srt/utils/certs.py": Reason(Why.IMPORTED, "sglang/srt/entrypoints/tls.py")}
    assert str(added["sglang/srt/entrypoints/tls.py"]) == \
        "imported lazily by request handling (sglang/srt/entrypoints/http.py)"
    # not the off-surface NPU pool (refused at the front door), not what non-request code imports lazily


def test_what_kept_code_loads_from_whole_paths_joins_the_plan(tmp_path):
    files = {
        "sglang/srt/quant/fp4.py": "def apply():\n    import sglang.srt.moe.cutedsl\n    import sglang.srt.moe.other\n",
        "sglang/srt/moe/cutedsl.py": "def run():\n    from sglang.srt.moe.cutedsl_kernels import k\n    return k\n",
        "sglang/srt/moe/cutedsl_kernels.py": "from sglang.srt.utils.cute import load\n\nk = load\n",
        "sglang/srt/utils/cute.py": "def load():\n    return 1\n",
        "sglang/srt/moe/other.py": "x = 1\n",
        # a kept extension module (the gRPC server's _core.*.so): binary, no imports to read
        "sglang/srt/grpc/_core.cpython-312-x86_64-linux-gnu.so": "\x7fELF\x00\x00",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    policy = Policy(wholes=tuple(Whole(f"sglang/srt/moe/{name}.py", "needs an sm100 GPU", "sm100")
                                 for name in ("cutedsl", "cutedsl_kernels")))
    kept = {"sglang/srt/quant/fp4.py", "sglang/srt/grpc/_core.cpython-312-x86_64-linux-gnu.so"}
    added = whole_path_imports(tmp_path, sorted(files), kept, policy)
    assert added == {  # not moe/other.py: no [[whole]] path holds it
        "sglang/srt/moe/cutedsl.py": Reason(Why.IMPORTED_BY_POLICY_KEPT, "sglang/srt/quant/fp4.py"),
        "sglang/srt/moe/cutedsl_kernels.py": Reason(Why.IMPORTED_BY_POLICY_KEPT, "sglang/srt/moe/cutedsl.py"),
        "sglang/srt/utils/cute.py": Reason(Why.IMPORTED, "sglang/srt/moe/cutedsl_kernels.py")}


def test_a_parameter_named_like_the_helper_does_not_stop_the_module_constant_folding():
    source = ("from sglang.srt.utils import is_npu\n_is_npu = is_npu()\n\n"
              "def pool(is_npu: bool):\n    return not is_npu\n")
    helpers, constants = platform_names(ast.parse(source), "sglang/srt/mem_cache/memory_pool.py")
    assert helpers == set() and constants == {"_is_npu"}  # `is_npu` itself stays: the parameter shadows it
