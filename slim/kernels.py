"""GPU kernels a run launched, and the Triton source behind them.

Runs outside the traced processes (after a run), so it may use anything. Two sources:

* a torch.profiler chrome trace (what sglang's /start_profile and /stop_profile
  write, `.json` or `.json.gz`): every event with "cat" == "kernel";
* an Nsight Systems report, through `nsys stats --report cuda_gpu_kern_sum --format csv`,
  when `nsys` is on PATH (otherwise a note says so and torch.profiler is the only source).

`TritonIndex` maps a kernel name to the `@triton.jit` function that defines it.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from slim.errors import SlimError

NSYS_MISSING = "nsys not on PATH: kernel traces come from torch.profiler only"


@dataclass(frozen=True)
class Kernel:
    name: str
    count: int
    total_us: float


@dataclass
class KernelSet:
    """Kernels by name, merged over sources, with notes on sources that could not be read."""

    kernels: dict[str, Kernel] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kernels: Iterable[Kernel]) -> None:
        for k in kernels:
            old = self.kernels.get(k.name)
            self.kernels[k.name] = k if old is None else Kernel(k.name, old.count + k.count,
                                                                old.total_us + k.total_us)

    def table(self) -> list[list]:
        """[[name, count, total µs]], most time first."""
        rows = sorted(self.kernels.values(), key=lambda k: (-k.total_us, k.name))
        return [[k.name, k.count, round(k.total_us, 3)] for k in rows]


def _summarise(pairs: Iterable[tuple[str, float]]) -> list[Kernel]:
    counts: dict[str, list] = {}
    for name, dur in pairs:
        entry = counts.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += dur
    return [Kernel(name, n, total) for name, (n, total) in sorted(counts.items())]


def kernels_from_chrome_trace(path: Path) -> list[Kernel]:
    """Kernels of a torch.profiler chrome trace: name, launches, total duration (µs)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        data = json.loads(text)
    except (OSError, EOFError, ValueError) as exc:
        raise SlimError(f"trace {path} is not a chrome trace JSON ({type(exc).__name__})") from None
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise SlimError(f"trace {path} has no traceEvents list")
    return _summarise((str(e["name"]), float(e.get("dur", 0.0)))
                      for e in events if isinstance(e, dict) and e.get("cat") == "kernel" and "name" in e)


def parse_nsys_kern_sum(text: str) -> list[Kernel]:
    """Kernels from `nsys stats --report cuda_gpu_kern_sum --format csv` output (times in ns)."""
    lines = text.splitlines()
    # nsys prints progress lines ("Generating SQLite file ...") before the CSV header.
    start = next((i for i, line in enumerate(lines) if '"Name"' in line or line.startswith("Time")), None)
    if start is None:
        return []
    kernels = []
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        name = row.get("Name")
        if not name:
            continue
        total_ns = float(row.get("Total Time (ns)") or 0)
        kernels.append(Kernel(name, int(float(row.get("Instances") or 0)), total_ns / 1000))
    return kernels


def kernels_from_nsys(report: Path, notes: list[str] | None = None) -> list[Kernel]:
    """Kernels of an nsys report (.nsys-rep or .sqlite); [] and a note when nsys is not installed."""
    nsys = shutil.which("nsys")
    if nsys is None:
        if notes is not None:
            notes.append(NSYS_MISSING)
        return []
    result = subprocess.run([nsys, "stats", "--report", "cuda_gpu_kern_sum", "--format", "csv",
                             "--output", "-", str(report)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SlimError(f"nsys stats failed on {report}: {result.stderr.strip()[-300:]}")
    return parse_nsys_kern_sum(result.stdout)


def collect_kernels(chrome_traces: Iterable[Path] = (), nsys_reports: Iterable[Path] = ()) -> KernelSet:
    """Merge the kernels of every trace; an nsys report without nsys gives a note, not a failure."""
    found = KernelSet()
    for path in chrome_traces:
        found.add(kernels_from_chrome_trace(path))
    reports = list(nsys_reports)
    if reports and shutil.which("nsys") is None:
        found.notes.append(NSYS_MISSING)
    else:
        for report in reports:
            found.add(kernels_from_nsys(report, found.notes))
    return found


# Triton < 3 suffixed kernel names with the specialisation of their arguments, e.g. "_fwd_kernel_0d1d2d3c".
_SPECIALISATION = re.compile(r"_(?:\d+[dc])+$")


def _is_triton_jit(decorator: ast.expr) -> bool:
    """@triton.jit, @jit, @triton.jit(...), @tl.jit ... (autotune/heuristics stack on top of one)."""
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(node, ast.Attribute):
        return node.attr == "jit" and isinstance(node.value, ast.Name) and node.value.id in ("triton", "tl")
    return isinstance(node, ast.Name) and node.id == "jit"


class _JitFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, str]] = []  # (name, qualname)

    def _visit_scope(self, node, is_function: bool) -> None:
        if is_function and any(_is_triton_jit(d) for d in node.decorator_list):
            self.found.append((node.name, ".".join([*self.scope, node.name])))
        self.scope.extend([node.name, "<locals>"] if is_function else [node.name])
        self.generic_visit(node)
        del self.scope[-(2 if is_function else 1):]

    def visit_FunctionDef(self, node):
        self._visit_scope(node, True)

    def visit_AsyncFunctionDef(self, node):
        self._visit_scope(node, True)

    def visit_ClassDef(self, node):
        self._visit_scope(node, False)


class TritonIndex:
    """Every `@triton.jit` function under a source tree, by name."""

    def __init__(self, tree: Path) -> None:
        self.tree = Path(tree)
        self.by_name: dict[str, list[tuple[str, str]]] = {}
        for path in sorted(self.tree.rglob("*.py")):
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if "jit" not in source:
                continue
            try:
                module = ast.parse(source, filename=str(path))
            except (SyntaxError, ValueError):
                continue
            finder = _JitFinder()
            finder.visit(module)
            rel = path.relative_to(self.tree).as_posix()
            for name, qualname in finder.found:
                self.by_name.setdefault(name, []).append((rel, qualname))

    def lookup(self, kernel_name: str) -> list[tuple[str, str]]:
        """(file relative to the tree, qualname) of the jit functions that may have made this kernel."""
        for candidate in (kernel_name, _SPECIALISATION.sub("", kernel_name)):
            if candidate in self.by_name:
                return self.by_name[candidate]
        return []


def triton_source(kernel_name: str, tree: Path) -> tuple[str, str] | None:
    """The one `@triton.jit` function named like this kernel, or None (absent or ambiguous)."""
    matches = TritonIndex(tree).lookup(kernel_name)
    return matches[0] if len(matches) == 1 else None


# Name fragments that tell which library a GPU kernel came from (checked in order).
LIBRARY_MARKERS = (
    ("deep_gemm", "deep_gemm"), ("sm90_fp8_gemm", "deep_gemm"), ("flashinfer", "flashinfer"),
    ("flash_mla", "flashmla"), ("flashmla", "flashmla"), ("nccl", "nccl"), ("cutlass", "cutlass"),
    ("cublas", "cublas"), ("gemm", "cublas/cutlass"), ("at::", "torch"), ("triton_", "triton (inductor)"),
)


def kernel_library(name: str, triton_source: str | None) -> str:
    """Best attribution from the kernel's name; a mapped @triton.jit function is sglang's own."""
    if triton_source:
        return "triton (sglang)"
    lowered = name.lower()
    return next((library for marker, library in LIBRARY_MARKERS if marker in lowered), "other")
