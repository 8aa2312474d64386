"""The Plan: a pure function from (upstream tree, recordings) to what the slimmed tree keeps.

Module level: a Python module (or extension module) is kept when any recording
imported it; a package `__init__.py` is kept when anything beneath it is kept,
since importing a submodule runs it; a data file (JSON configs, JIT kernel
sources) is kept when the nearest folder holding modules kept any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from slim.recording import Recording
from slim.upstream import OUT_OF_SCOPE, PACKAGE

MODULE_SUFFIXES = (".py", ".so")


@dataclass(frozen=True)
class FileDecision:
    path: str  # relative to the upstream root, e.g. "sglang/srt/utils.py"
    keep: bool
    reason: str


@dataclass
class Plan:
    recordings: list[str]
    files: list[FileDecision] = field(default_factory=list)

    @property
    def kept(self) -> list[str]:
        return [d.path for d in self.files if d.keep]

    @property
    def removed(self) -> list[FileDecision]:
        return [d for d in self.files if not d.keep]


def is_module(path: str) -> bool:
    return path.endswith(MODULE_SUFFIXES)


def package_files(tree: Path) -> list[str]:
    """Every file of the package, relative to the tree root, out-of-scope trees left out."""
    files = (p.relative_to(tree).as_posix() for p in (tree / PACKAGE).rglob("*") if p.is_file())
    return sorted(f for f in files if not f.startswith(OUT_OF_SCOPE) and "__pycache__" not in f)


def imported_files(recordings: list[Recording]) -> dict[str, list[str]]:
    """File -> names of the recordings that imported it."""
    seen: dict[str, list[str]] = {}
    for recording in recordings:
        for path in sorted(set(recording.modules["file"].dropna())):
            seen.setdefault(path, []).append(recording.name)
    return seen


def _ancestor_inits(path: str) -> list[str]:
    parents = PurePosixPath(path).parents
    return [f"{p}/__init__.py" for p in parents if p.as_posix().startswith(PACKAGE)]


def _module_home(path: str, module_dirs: set[str]) -> str | None:
    """Nearest folder at or above this file's folder that holds modules."""
    for parent in PurePosixPath(path).parents:
        if parent.as_posix() in module_dirs:
            return parent.as_posix()
    return None


def make_plan(files: list[str], recordings: list[Recording]) -> Plan:
    """Decide keep/remove for every upstream file from what the recordings imported."""
    imported = imported_files(recordings)
    kept_modules = {f for f in files if is_module(f) and f in imported}
    needed_inits = {init for f in kept_modules for init in _ancestor_inits(f)}
    module_dirs = {PurePosixPath(f).parent.as_posix() for f in files if is_module(f)}
    live_dirs = {PurePosixPath(f).parent.as_posix() for f in kept_modules | needed_inits}
    plan = Plan(recordings=sorted(r.name for r in recordings))
    for path in files:
        if path in kept_modules:
            decision = FileDecision(path, True, f"imported by {', '.join(imported[path])}")
        elif path in needed_inits:
            decision = FileDecision(path, True, "package __init__ of kept modules")
        elif is_module(path):
            decision = FileDecision(path, False, "never imported in any recording")
        elif _module_home(path, module_dirs) in live_dirs:
            decision = FileDecision(path, True, "data file of a kept package")
        else:
            decision = FileDecision(path, False, "data file of a removed package")
        plan.files.append(decision)
    return plan
