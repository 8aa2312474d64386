"""Recordings: one gzip JSON per scenario run in coverage_db/, read as pandas tables.

A recording holds what one scenario run touched in the upstream package
(modules and functions, by path relative to the package root), the run's
environment and launch command, and the reference outputs of its workload.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from slim.datafile import read_gzip_json, write_gzip_json
from slim.errors import SlimError
from slim.shards import Shard

RECORDING_SCHEMA = "slim-recording/1"
REQUIRED_KEYS = ("scenario", "upstream", "environment", "command", "processes", "modules", "functions", "outputs")
# Added later by the tracer; a recording without them is still valid (see the Recording properties).
OPTIONAL_KEYS = ("shared_libs", "opened_files", "lines", "third_party_modules")
PACKAGE_PREFIX = "sglang"


def package_relative(path: str | None, package_root: str) -> str | None:
    """'/site/sglang/srt/x.py' -> 'sglang/srt/x.py' when it lies under package_root."""
    if not path:
        return None
    root = package_root.rstrip("/") + "/"
    return path[len(root):] if path.startswith(root + PACKAGE_PREFIX + "/") else None


# Just-in-time compile caches under $HOME whose files a run reads: kept, as "~/<marker>...".
JIT_CACHE_MARKERS = ("/.cache/flashinfer/", "/.triton/", "/.cache/deep_gemm/", "/.cache/tvm-ffi/")
DIST_FOLDERS = ("/site-packages/", "/dist-packages/")


SITE = "<site>/"  # prefix of files in the third-party runtime the server ran from (PYTHONPATH)


def dist_relative(path: str, package_root: str, model_dir: str | None = None,
                  site_roots: tuple[str, ...] = ()) -> str | None:
    """A file's name independent of the host: relative to package_root or its site-packages folder,
    '<model>/...' inside the model, '<site>/...' inside a third-party runtime folder on PYTHONPATH
    (site_roots), '~/.cache/flashinfer/...' in a JIT cache; None otherwise."""
    root = package_root.rstrip("/") + "/"
    if path.startswith(root):
        return path[len(root):]
    if model_dir:
        model = model_dir.rstrip("/") + "/"
        if path.startswith(model):
            return "<model>/" + path[len(model):]
    for site in site_roots:
        site = site.rstrip("/") + "/"
        if path.startswith(site):
            return SITE + path[len(site):]
    for folder in DIST_FOLDERS:
        at = path.rfind(folder)
        if at >= 0:
            return path[at + len(folder):]
    for marker in JIT_CACHE_MARKERS:
        at = path.find(marker)
        if at >= 0:
            return "~" + path[at:]
    return None


def merge_shards(shards: list[Shard], package_root: str, model_dir: str | None = None,
                 site_roots: tuple[str, ...] = ()) -> dict:
    """Union of all processes: sglang modules and functions with how many processes ran each,
    shared libraries mapped, files opened and third-party module files imported (all processes;
    `site_roots`: the third-party runtime folders on PYTHONPATH), executed lines in line mode."""
    def named(path: str) -> str | None:
        return dist_relative(path, package_root, model_dir, site_roots)

    module_hits: Counter = Counter()
    function_hits: Counter = Counter()
    lib_hits: Counter = Counter()
    file_hits: Counter = Counter()
    line_hits: Counter = Counter()
    third_party_hits: Counter = Counter()
    line_mode = False
    processes = []
    for shard in shards:
        # By file, not name: `python -m sglang.launch_server` runs as __main__ (and __mp_main__).
        modules = {
            (name, rel)
            for name, file in shard.modules.items()
            if (rel := package_relative(file, package_root)) is not None
            or name == PACKAGE_PREFIX or name.startswith(PACKAGE_PREFIX + ".")
        }
        functions = {
            (rel, qualname, line)
            for file, qualname, line in shard.functions
            if (rel := package_relative(file, package_root)) is not None
        }
        module_hits.update(modules)
        function_hits.update(functions)
        # Libraries outside any site-packages (libc, libcuda) keep their absolute path.
        lib_hits.update({named(lib) or lib for lib in shard.shared_libs})
        # Imported sources and bytecode are the modules table already; keep data files, sources read
        # as text (inspect, triton), model files and JIT caches.
        imported = {file for file in shard.modules.values() if file}
        file_hits.update({
            name for path in shard.opened_files
            if not path.endswith(".pyc") and path not in imported and (name := named(path)) is not None
        })
        # Which files of the third-party packages were imported (the bundle prunes by it).
        third_party_hits.update({
            name for module, file in shard.modules.items()
            if file and package_relative(file, package_root) is None and (name := named(file)) is not None
        })
        if shard.lines is not None:
            line_mode = True
            line_hits.update({
                (name, line) for file, line in shard.lines
                if (name := package_relative(file, package_root)) is not None
            })
        processes.append({
            "pid": shard.pid, "ppid": shard.ppid, "host": shard.host, "argv": shard.argv[:4],
            "modules": len(modules), "functions": len(functions),
            "third_party": sorted({n.split(".")[0] for n in shard.modules} - {PACKAGE_PREFIX}),
        })
    merged = {
        "processes": processes,
        "modules": sorted([name, rel, n] for (name, rel), n in module_hits.items()),
        "functions": sorted([rel, qualname, line, n] for (rel, qualname, line), n in function_hits.items()),
        "shared_libs": sorted([lib, n] for lib, n in lib_hits.items()),
        "opened_files": sorted([path, n] for path, n in file_hits.items()),
        "third_party_modules": sorted([path, n] for path, n in third_party_hits.items()),
    }
    if line_mode:
        merged["lines"] = sorted([rel, line, n] for (rel, line), n in line_hits.items())
    return merged


def write_recording(recording: dict, path: Path) -> Path:
    """Atomically write a recording (gzip JSON, stable key order, no timestamp in the gzip header)."""
    return write_gzip_json({"schema": RECORDING_SCHEMA, **recording}, path)


@dataclass(frozen=True)
class Recording:
    path: Path
    data: dict

    @cached_property  # asked per row by the plan
    def name(self) -> str:
        return self.path.name.removesuffix(".json.gz")

    @property
    def scenario(self) -> str:
        return self.data["scenario"]

    @property
    def modules(self) -> pd.DataFrame:
        return pd.DataFrame(self.data["modules"], columns=["module", "file", "processes"])

    @property
    def functions(self) -> pd.DataFrame:
        return pd.DataFrame(self.data["functions"], columns=["file", "qualname", "line", "processes"])

    @property
    def outputs(self) -> list[dict]:
        return self.data["outputs"]

    # Optional tables: recordings made before the tracer recorded them lack the keys.
    @property
    def shared_libs(self) -> pd.DataFrame:
        return pd.DataFrame(self.data.get("shared_libs", []), columns=["path", "processes"])

    @property
    def opened_files(self) -> pd.DataFrame:
        return pd.DataFrame(self.data.get("opened_files", []), columns=["path", "processes"])

    @property
    def third_party_modules(self) -> pd.DataFrame:
        """Files of third-party modules imported (recordings since they were recorded)."""
        return pd.DataFrame(self.data.get("third_party_modules", []), columns=["path", "processes"])

    @property
    def has_lines(self) -> bool:
        return "lines" in self.data

    @property
    def lines(self) -> pd.DataFrame:
        """Executed lines (line-mode recordings only; empty otherwise)."""
        return pd.DataFrame(self.data.get("lines", []), columns=["file", "line", "processes"])


def load_recording(path: Path, upstream_version: str | None = None) -> Recording:
    """Read and validate one recording; any defect is a one-line SlimError naming the file."""
    data = read_gzip_json(path, "recording", "gzip JSON", RECORDING_SCHEMA, REQUIRED_KEYS)
    version = data["upstream"].get("version")
    if upstream_version is not None and version != upstream_version:
        raise SlimError(f"recording {path} was made on sglang {version}, slim is pinned to {upstream_version}")
    return Recording(path, data)


# Recordings made but not yet behind the committed tree (no tree planned from them has passed a
# GPU verify): coverage_db/pending/<scenario>/<run>.json.gz, same layout, read with --db.
PENDING = "pending"
# Recordings of upstream that no tree has served on a GPU yet (the device budget ran out before a
# verify; a pending run, by contrast, carries a verify of the committed tree):
# coverage_db/unverified/<scenario>/<run>.json.gz. No plan reads them; they move into
# coverage_db/<scenario>/ together with a passing verify of the tree planned from them.
UNVERIFIED = "unverified"
# Folders of coverage_db that hold slim's own results or waiting runs, not the committed runs.
NOT_SCENARIOS = {"benchmarks", "bundle", PENDING, UNVERIFIED}


def recording_paths(db: Path) -> list[Path]:
    """Recordings in coverage_db: <scenario>/<run>.json.gz (verification reports beside them are .json)."""
    return sorted(p for p in db.glob("*/*.json.gz") if p.parent.name not in NOT_SCENARIOS)


def load_all(db: Path, upstream_version: str) -> list[Recording]:
    paths = recording_paths(db)
    if not paths:
        raise SlimError(f"no recordings in {db}: run `slim record --scenario NAME` on a GPU host")
    return [load_recording(p, upstream_version) for p in paths]


def load_waiting(db: Path, folder: str, upstream_version: str) -> list[Recording]:
    """The runs waiting in coverage_db/<folder>/ (pending or unverified; none: an empty list, not an error)."""
    return load_all(db / folder, upstream_version) if recording_paths(db / folder) else []


def load_pending(db: Path, upstream_version: str) -> list[Recording]:
    return load_waiting(db, PENDING, upstream_version)


def all_modules(recordings: list[Recording]) -> pd.DataFrame:
    """One row per (recording, sglang module imported)."""
    frames = [r.modules.assign(recording=r.name, scenario=r.scenario) for r in recordings]
    return pd.concat(frames, ignore_index=True)


def last_recorded(db: Path) -> dict[str, str]:
    """Scenario -> 'when on which GPU' of its newest recording (read lazily: only the newest)."""
    newest: dict[str, Path] = {}
    for path in recording_paths(db):
        newest[path.parent.name] = path  # sorted by run id, i.e. by time
    summary = {}
    for scenario, path in newest.items():
        data = load_recording(path).data
        gpus = data["environment"].get("gpus") or [{"name": "?"}]
        gpu = gpus[0]["name"].removeprefix("NVIDIA ").split()[0]  # "NVIDIA H100 80GB HBM3" -> "H100"
        summary[scenario] = f"{data.get('recorded_at', path.name)[:16]} {len(gpus)}x{gpu}"
    return summary
