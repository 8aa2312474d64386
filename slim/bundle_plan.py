"""Which third-party runtime files the bundle keeps, and why: a pure function of file paths and usage.

What the recordings know about the third-party site (tracer/collector.py, slim/recording.py):
- shared libraries mapped in every server process (/proc/self/maps, so a library's own dependencies
  are in the list too: keeping every mapped .so keeps everything a kept .so needs to load);
- third-party imports per process, by top-level name only (`processes[].third_party`): the
  per-module files are not merged into recordings, so "imported" is decided per top-level package;
- opened files, but until 2026-11-23 only inside site-packages/dist-packages, the sglang root, the
  model and JIT caches: the gpu_session.sh layout (/opt/rt/deps/site on PYTHONPATH) fell outside
  those, so the recordings of that day show no opens of JIT sources in flashinfer/deep_gemm/
  sgl_kernel. `slim record` now names the runtime site's files "<site>/..." (opens, and the
  third-party module files imported: `third_party_modules`), so later recordings will.
Hence the rules are conservative: drop whole never-imported packages and never-mapped shared
libraries; drop a never-opened data file only in a package where the recordings show opens (i.e.
opens there were being recorded); keep every other file of an imported package. Packages that
compile kernels at run time keep all their sources: a recording host with warm JIT caches opens
only what it rebuilds, so opens say nothing about what a fresh host reads (a bundle that dropped
the unopened flashinfer/cutlass headers failed on 2026-11-23: ninja rebuilt `norm` and found
them gone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from slim.recording import SITE

# Where the third-party site sits on the GPU hosts that recorded or verify (ci/gpu_session.sh).
DEPS_SITE_ROOTS = ("/opt/rt/deps/site/", "/opt/rt/bundle/site/")

# Packages whose headers and sources are compiled on the serving host (flashinfer, DeepGEMM, the
# TVM FFI headers they build against).
JIT_SOURCE_PACKAGES = frozenset({"flashinfer", "deep_gemm", "tvm_ffi"})

# rule -> whether it keeps the file
RULES = {
    "metadata": True,          # *.dist-info: importlib.metadata must still find every distribution
    "mapped": True,            # a shared library some server process mapped
    "opened": True,            # a file some server process opened
    "imported-package": True,  # any other file of an imported package (no per-file import record)
    "jit-sources": True,       # a non-Python file of a package that compiles kernels at run time
    "hand-dropped": False,     # in the wheels but left out of the site by ci/build_gpu_runtime.sh
    "never-mapped": False,     # a shared library no server process mapped
    "never-imported": False,   # a top-level package or module no server process imported
    "wheel-data": False,       # <dist>.data/ (scripts, headers): not importable
    "never-opened": False,     # a non-Python file never opened, in a package whose opens were recorded
}


@dataclass(frozen=True)
class Usage:
    """What the recorded server processes touched in the third-party site (site-relative paths)."""
    imported: frozenset[str]
    mapped: frozenset[str]
    opened: frozenset[str]


@dataclass(frozen=True)
class Decision:
    path: str
    rule: str
    detail: str

    @property
    def keep(self) -> bool:
        return RULES[self.rule]


def site_relative(path: str, roots: tuple[str, ...] = DEPS_SITE_ROOTS) -> str | None:
    """A recorded path as a path inside the third-party site; None elsewhere. Recordings name our
    site's files "<site>/..." (slim.recording.SITE); older ones kept them absolute under `roots`.
    Other relative recorded paths are the image's site-packages, a different copy from ours (ours
    is first on PYTHONPATH), so they say nothing about our files."""
    if path.startswith(SITE):
        return path[len(SITE):]
    for root in roots:
        if path.startswith(root):
            return path[len(root):]
    return None


def usage_from_recordings(recordings, roots: tuple[str, ...] = DEPS_SITE_ROOTS) -> Usage:
    """Union over every recording and every process."""
    imported, mapped, opened = set(), set(), set()
    for rec in recordings:
        for process in rec.data.get("processes", []):
            imported.update(process.get("third_party", []))
        mapped.update(rel for p in rec.shared_libs.path if (rel := site_relative(p, roots)))
        opened.update(rel for p in rec.opened_files.path if (rel := site_relative(p, roots)))
    return Usage(frozenset(imported), frozenset(mapped), frozenset(opened))


def is_shared_lib(path: str) -> bool:
    # Same test as the collector's: versioned names (libzmq-x.so.5.2.5) count too.
    return ".so" in path.rsplit("/", 1)[-1]


def top_level(path: str) -> str:
    """The import name a site file belongs to: its folder, or for a file at the site root its stem
    ('orjson/x.so' -> 'orjson', '_cffi_backend.cpython-312-x86_64-linux-gnu.so' -> '_cffi_backend')."""
    head, sep, _ = path.partition("/")
    return head if sep else head.split(".", 1)[0]


def decide(path: str, present: bool, usage: Usage, opens_recorded: frozenset[str]) -> Decision:
    """One file's fate; the first rule that applies wins."""
    first = path.split("/", 1)[0]
    if not present:
        return Decision(path, "hand-dropped", "not in the deps site (see ci/build_gpu_runtime.sh)")
    if first.endswith(".dist-info"):
        return Decision(path, "metadata", "package metadata")
    if is_shared_lib(path):
        if path in usage.mapped:
            return Decision(path, "mapped", "mapped by a recorded server process")
        return Decision(path, "never-mapped", "no recorded server process mapped it")
    if first.endswith(".data"):
        return Decision(path, "wheel-data", "wheel data folder, not importable")
    top = top_level(path)
    if top not in usage.imported:
        return Decision(path, "never-imported", f"no recorded server process imported '{top}'")
    if path in usage.opened:
        return Decision(path, "opened", "opened by a recorded server process")
    if top in JIT_SOURCE_PACKAGES and not path.endswith(".py"):
        return Decision(path, "jit-sources", f"'{top}' compiles kernels at run time: warm caches hide what it reads")
    if top in opens_recorded and not path.endswith(".py"):
        return Decision(path, "never-opened", f"opens in '{top}' were recorded; this file was not opened")
    return Decision(path, "imported-package", f"'{top}' was imported; files are kept whole per package")


def plan_bundle(upstream: Iterable[str], present: set[str], usage: Usage) -> list[Decision]:
    """Keep or prune every upstream file (wheel contents), sorted by path."""
    opens_recorded = frozenset(top_level(p) for p in usage.opened if not is_shared_lib(p))
    return [decide(p, p in present, usage, opens_recorded) for p in sorted(set(upstream))]
