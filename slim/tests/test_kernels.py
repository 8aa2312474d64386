import gzip
import json
import os
import stat

import pytest

from slim.errors import SlimError
from slim.kernels import (
    NSYS_MISSING,
    Kernel,
    TritonIndex,
    collect_kernels,
    kernels_from_chrome_trace,
    kernels_from_nsys,
    parse_nsys_kern_sum,
    triton_source,
)

TRACE = {"traceEvents": [
    {"ph": "X", "cat": "kernel", "name": "_fwd_kernel", "dur": 10.5},
    {"ph": "X", "cat": "kernel", "name": "_fwd_kernel", "dur": 4.5},
    {"ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4>()", "dur": 2},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 3},
    {"ph": "X", "cat": "cpu_op", "name": "aten::add", "dur": 8},
]}

NSYS_CSV = """Generating SQLite file report.sqlite from report.nsys-rep
Processing [report.sqlite] with [cuda_gpu_kern_sum.py]...
"Time (%)","Total Time (ns)","Instances","Avg (ns)","Med (ns)","Min (ns)","Max (ns)","StdDev (ns)","Name"
"61.2","120000","30","4000.0","4000.0","3900","4100","50.0","_fwd_kernel"
"38.8","76000","2","38000.0","38000.0","37000","39000","1414.2","void deep_gemm::fp8_gemm<128>(float *, int)"
"""


def test_chrome_trace_kernels(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(TRACE))
    kernels = {k.name: k for k in kernels_from_chrome_trace(path)}
    assert kernels == {
        "_fwd_kernel": Kernel("_fwd_kernel", 2, 15.0),
        "void at::native::vectorized_elementwise_kernel<4>()":
            Kernel("void at::native::vectorized_elementwise_kernel<4>()", 1, 2.0),
    }


def test_gzipped_chrome_trace(tmp_path):
    path = tmp_path / "trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps(TRACE).encode()))
    assert len(kernels_from_chrome_trace(path)) == 2


def test_bad_chrome_trace_is_named(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(SlimError, match=r"t\.json is not a chrome trace"):
        kernels_from_chrome_trace(path)


def test_nsys_csv():
    kernels = parse_nsys_kern_sum(NSYS_CSV)
    assert kernels[0] == Kernel("_fwd_kernel", 30, 120.0)
    assert kernels[1].name == "void deep_gemm::fp8_gemm<128>(float *, int)" and kernels[1].count == 2


def test_without_nsys_a_note_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(TRACE))
    found = collect_kernels([trace], [tmp_path / "report.nsys-rep"])
    assert found.notes == [NSYS_MISSING]
    assert found.table()[0] == ["_fwd_kernel", 2, 15.0]
    notes = []
    assert kernels_from_nsys(tmp_path / "report.nsys-rep", notes) == [] and notes == [NSYS_MISSING]


def test_with_nsys_on_path(tmp_path, monkeypatch):
    fake = tmp_path / "nsys"
    fake.write_text(f"#!/bin/sh\ncat <<'CSV'\n{NSYS_CSV}CSV\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(TRACE))
    found = collect_kernels([trace], [tmp_path / "report.nsys-rep"])
    assert found.notes == []
    assert found.kernels["_fwd_kernel"] == Kernel("_fwd_kernel", 32, 135.0)


def test_triton_kernels_map_to_their_jit_function(tmp_path):
    pkg = tmp_path / "sglang" / "srt" / "layers"
    pkg.mkdir(parents=True)
    (pkg / "attention.py").write_text(
        "import triton\nimport triton.language as tl\n\n\n"
        "@triton.jit\ndef _fwd_kernel(Q, K):\n    pass\n\n\n"
        "def _fwd_kernel_launcher():\n    pass\n\n\n"
        "@triton.autotune(configs=[], key=[])\n@triton.jit(do_not_specialize=['n'])\ndef tuned_kernel(n):\n"
        "    pass\n\n\n"
        "class Ops:\n    @staticmethod\n    def build():\n        @triton.jit\n        def inner_kernel(x):\n"
        "            pass\n        return inner_kernel\n")
    (pkg / "moe.py").write_text("from triton import jit\n\n\n@jit\ndef fused_moe_kernel(a):\n    pass\n\n\n"
                                "@jit\ndef _fwd_kernel(a):\n    pass\n")
    (pkg / "broken.py").write_text("def jit(:\n")
    index = TritonIndex(tmp_path)
    assert index.lookup("tuned_kernel") == [("sglang/srt/layers/attention.py", "tuned_kernel")]
    assert index.lookup("inner_kernel") == [("sglang/srt/layers/attention.py", "Ops.build.<locals>.inner_kernel")]
    assert index.lookup("fused_moe_kernel_0d1d2d3c") == [("sglang/srt/layers/moe.py", "fused_moe_kernel")]
    assert index.lookup("_fwd_kernel_launcher") == []  # not jit
    assert len(index.lookup("_fwd_kernel")) == 2
    assert triton_source("fused_moe_kernel", tmp_path) == ("sglang/srt/layers/moe.py", "fused_moe_kernel")
    assert triton_source("_fwd_kernel", tmp_path) is None  # ambiguous: lookup() lists both
    assert triton_source("void at::native::foo<4>()", tmp_path) is None
