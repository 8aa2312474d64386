"""The keep-policy (slim/policy.toml): code kept for hardware or packages no recording reaches."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from slim.errors import SlimError

POLICY_FILE = Path(__file__).with_name("policy.toml")
PLAN_MODES = ("names", "reach", "lean", "lines", "surface")


@dataclass(frozen=True)
class Keep:
    file: str
    qualname: str | None  # None: the whole file
    reason: str
    scenario: str

    def covers(self, file: str, qualname: str) -> bool:
        """A qualname entry covers the def itself and everything nested in it."""
        if file != self.file:
            return False
        return self.qualname is None or qualname == self.qualname or qualname.startswith(self.qualname + ".")


@dataclass(frozen=True)
class Whole:
    """Under `prefix` (a file, or a folder ending in /), what kept code names stays whole: no
    stubs, and classes no recording instantiated keep their methods. For a scenario of the matrix
    whose hardware no recording host had: its code is reached by name, never run."""
    prefix: str
    reason: str
    scenario: str


@dataclass(frozen=True)
class Sampled:
    """Under `prefix` (a file, or a folder ending in /), what runs depends on each request's
    content and the server's load, and a workload is a sample of those: a def no executed line
    names there is no evidence that users will not reach it, so the "lines" mode does not stub it
    (lean's rules still apply)."""
    prefix: str
    reason: str


@dataclass(frozen=True)
class OffSurface:
    """Under `prefix`, code for a feature outside the supported surface (DeepSeek V2/V3/R1 served
    on NVIDIA GPUs) that kept code still names behind a flag or an environment switch: the
    "surface" mode stubs a def there that never ran ("lines", everywhere, one no executed line names).
    With a `symbols` glob (policy path "prefix::glob"), only the defs whose qualname matches it:
    another family's methods inside a file DeepSeek shares ("KVCacheConfigurator.*mamba*")."""
    prefix: str
    reason: str
    symbols: str | None = None

    @property
    def path(self) -> str:
        """As written in the policy."""
        return f"{self.prefix}::{self.symbols}" if self.symbols else self.prefix

    def holds(self, qualname: str | None) -> bool:
        return self.symbols is None or (qualname is not None and fnmatchcase(qualname, self.symbols))


def _holds_file(prefix: str, file: str) -> bool:
    """`prefix` is `file`, or a folder (ending in /) above it."""
    return file == prefix or (prefix.endswith("/") and file.startswith(prefix))


def _first_under(entries, file: str):
    return next((e for e in entries if _holds_file(e.prefix, file)), None)


@dataclass(frozen=True)
class Policy:
    keeps: tuple[Keep, ...] = ()
    # How the plan decides inside imported modules (slim.plan.make_function_plan): "names" keeps
    # every def any imported module names; "reach" keeps what the code that ran reaches; "lean" is
    # reach that also cuts the methods of classes never instantiated and stubs what only modules
    # where nothing ran hold (slim/reach.py), and takes deleted defs' trailing blank lines; "lines"
    # is lean that also stubs never-run defs no executed line names (line-mode recordings), outside
    # the [[sampled]] paths; "surface" is lean that does so only under the [[off_surface]] paths,
    # and that elsewhere keeps whole the flag-built code (what ran code calls on unexecuted lines).
    mode: str = "names"
    wholes: tuple[Whole, ...] = ()
    sampled: tuple[Sampled, ...] = ()
    off_surface: tuple[OffSurface, ...] = ()

    @property
    def lean(self) -> bool:
        return self.mode in ("lean", "lines", "surface")

    @property
    def lines(self) -> bool:
        """The mode reads line evidence: "lines" and "surface"."""
        return self.mode in ("lines", "surface")

    def judged_by_lines(self, file: str, qualname: str | None = None) -> bool:
        """Whether a never-run def in `file` (named `qualname`) is stubbed on line evidence: in "lines"
        when no executed line names it, in "surface" (off the surface) whoever names it."""
        if self.mode == "lines":
            return self.sampled_for(file) is None
        return self.mode == "surface" and self.off_surface_for(file, qualname) is not None

    def flag_built(self, file: str, qualname: str | None = None) -> bool:
        """Whether "surface" keeps whole what code that ran calls in `file` (see slim/reach.py):
        a launch flag inside the surface builds it, though no scenario set that flag."""
        return self.mode == "surface" and self.off_surface_for(file, qualname) is None

    def whole_for(self, file: str, qualname: str | None = None) -> Whole | None:
        """The [[whole]] entry over `file`; an [[off_surface]] file or def inside a [[whole]]
        folder (an AMD all-to-all among the EP dispatchers) is judged as off the surface."""
        return _first_under(self.wholes, file) if self.off_surface_for(file, qualname) is None else None

    def sampled_for(self, file: str) -> Sampled | None:
        return _first_under(self.sampled, file)

    def off_surface_for(self, file: str, qualname: str | None = None) -> OffSurface | None:
        """The [[off_surface]] entry over `file` (without `qualname`: a whole-file entry only)."""
        if file not in self._off_surface_under:  # asked for every def, often: each file's entries once
            self._off_surface_under[file] = [e for e in self.off_surface if _holds_file(e.prefix, file)]
        return next((e for e in self._off_surface_under[file] if e.holds(qualname)), None)

    @cached_property
    def _off_surface_under(self) -> dict[str, list[OffSurface]]:
        return {}

    @property
    def files(self) -> dict[str, Keep]:
        return {k.file: k for k in self.keeps if k.qualname is None}

    def keep_for(self, file: str, qualname: str) -> Keep | None:
        return next((k for k in self.keeps if k.covers(file, qualname)), None)


def _entries(data: dict, table: str, required: tuple[str, ...], path: Path) -> list[dict]:
    """The policy's `[[table]]` entries, each with every required key set (or a one-line error)."""
    entries = data.get(table, [])
    for i, entry in enumerate(entries):
        if missing := [k for k in required if not entry.get(k)]:
            raise SlimError(f"policy {path}: {table} entry {i + 1} lacks {', '.join(missing)}")
    return entries


def _path_entries(data: dict, table: str, required: tuple[str, ...], path: Path) -> list[tuple[str, dict]]:
    """(prefix, entry) for each of the `paths` of each `[[table]]` entry."""
    return [(prefix, entry) for entry in _entries(data, table, required, path) for prefix in entry["paths"]]


def load_policy(path: Path = POLICY_FILE) -> Policy:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SlimError(f"policy {path}: {exc}") from None
    keeps = []
    for entry in _entries(data, "keep", ("path", "reason", "scenario"), path):
        file, _, qualname = entry["path"].partition("::")
        keeps.append(Keep(file, qualname or None, entry["reason"], entry["scenario"]))
    wholes = [Whole(prefix, e["reason"], e["scenario"])
              for prefix, e in _path_entries(data, "whole", ("paths", "reason", "scenario"), path)]
    sampled = [Sampled(prefix, e["reason"]) for prefix, e in _path_entries(data, "sampled", ("paths", "reason"), path)]
    off_surface = [OffSurface(prefix, e["reason"], symbols or None) for spec, e in
                   _path_entries(data, "off_surface", ("paths", "reason"), path)
                   for prefix, _, symbols in [spec.partition("::")]]
    mode = data.get("plan", {}).get("mode", "names")
    if mode not in PLAN_MODES:
        raise SlimError(f"policy {path}: [plan] mode must be one of {', '.join(PLAN_MODES)}, not {mode!r}")
    return Policy(tuple(keeps), mode, tuple(wholes), tuple(sampled), tuple(off_surface))


def defined_qualnames(source: bytes) -> set[str]:
    """Qualnames of every class and function in a module ('A', 'A.f', 'g', 'g.inner')."""
    import ast

    found: set[str] = set()

    def walk(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                found.add(prefix + child.name)
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return found


def add_keep(symbol: str, reason: str, scenario: str, tree: Path, path: Path = POLICY_FILE) -> Keep:
    """Append a keep entry ("file" or "file::qualname", relative to the upstream root) to the policy.

    The file must exist in the upstream tree and the qualname be defined in it: an entry that
    matches nothing would silently keep nothing."""
    file, _, qualname = symbol.partition("::")
    if not reason.strip() or not scenario.strip():
        raise SlimError(f"--keep {symbol}: give a --reason and the --scenario that would record it")
    source = tree / file
    if not file.startswith("sglang/") or not source.is_file():
        raise SlimError(f"--keep {symbol}: no file {file} in the upstream tree {tree}")
    if qualname and qualname not in defined_qualnames(source.read_bytes()):
        raise SlimError(f"--keep {symbol}: {file} defines no {qualname}")
    if any(k.file == file and k.qualname == (qualname or None) for k in load_policy(path).keeps):
        raise SlimError(f"--keep {symbol}: already in {path}")
    # JSON string literals are valid TOML basic strings.
    entry = (f"\n[[keep]]\npath = {json.dumps(symbol)}\nreason = {json.dumps(reason.strip())}\n"
             f"scenario = {json.dumps(scenario.strip())}\n")
    with path.open("a") as out:
        out.write(entry)
    return Keep(file, qualname or None, reason.strip(), scenario.strip())
