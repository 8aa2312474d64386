"""The keep-policy (slim/policy.toml): code kept for hardware or packages no recording reaches."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from slim.errors import SlimError
from slim.memo_cache import Memo

POLICY_FILE = Path(__file__).with_name("policy.toml")
SURFACE_DB = Path(__file__).resolve().parent.parent / "coverage_db"  # holds surface/inventory.json


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
        return self.qualname is None or _within(qualname, self.qualname)


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
    content and the server's load, and a workload is a sample of those: that a def never ran there
    is no evidence that users will not reach it, so none is stubbed and no class loses methods for
    not having run (slim/reach.py)."""
    prefix: str
    reason: str


@dataclass(frozen=True)
class OffSurface:
    """Under `prefix`, code for a feature outside the supported surface (DeepSeek V2/V3/R1 served
    on NVIDIA GPUs) that kept code still names behind a flag or an environment switch: the plan
    stubs a def there that never ran (slim/reach.py).
    With a `qualname` (policy path "file::qualname"), only that def of the file and what is nested
    in it: another family's method inside a file DeepSeek shares ("KVCacheConfigurator._build_dsa_kv_pool")."""
    prefix: str
    reason: str
    qualname: str | None = None

    @property
    def path(self) -> str:
        """As written in the policy."""
        return f"{self.prefix}::{self.qualname}" if self.qualname else self.prefix

    def holds(self, qualname: str | None) -> bool:
        """A whole-path entry holds every def; a qualname entry the def itself and its members
        (`Foo` holds `Foo.bar`, never `FooBar` or `Foo2`)."""
        return self.qualname is None or (qualname is not None and _within(qualname, self.qualname))


def _within(qualname: str, outer: str) -> bool:
    """`qualname` is `outer` or nested in it."""
    return qualname == outer or qualname.startswith(outer + ".")


def _holds_file(prefix: str, file: str) -> bool:
    """`prefix` is `file`, or a folder (ending in /) above it."""
    return file == prefix or (prefix.endswith("/") and file.startswith(prefix))


def _first_under(entries, file: str):
    return next((e for e in entries if _holds_file(e.prefix, file)), None)


@dataclass(frozen=True)
class Policy:
    keeps: tuple[Keep, ...] = ()
    wholes: tuple[Whole, ...] = ()
    sampled: tuple[Sampled, ...] = ()
    off_surface: tuple[OffSurface, ...] = ()
    # The surface's removed items (slim/surface.toml), refused at their front doors (slim/front_door.py),
    # and the route handlers whose every route is among them (so no route root).
    front_door: tuple[dict, ...] = ()
    refused_routes: frozenset[tuple[str, str]] = frozenset()

    def whole_for(self, file: str, qualname: str | None = None) -> Whole | None:
        """The [[whole]] entry over `file`; an [[off_surface]] file or def inside a [[whole]]
        folder (an AMD all-to-all among the EP dispatchers) is judged as off the surface."""
        return self._first_under("wholes", file) if self.off_surface_for(file, qualname) is None else None

    def sampled_for(self, file: str) -> Sampled | None:
        return self._first_under("sampled", file)

    def _first_under(self, table: str, file: str):
        """The first entry of `table` over `file`; asked for every def, so each file's answer once."""
        if (table, file) not in self._first_under_cache:
            self._first_under_cache[(table, file)] = _first_under(getattr(self, table), file)
        return self._first_under_cache[(table, file)]

    @cached_property
    def _first_under_cache(self) -> dict[tuple[str, str], Whole | Sampled | None]:
        return {}

    def module_on_surface(self, module: str) -> bool:
        """No whole-file [[off_surface]] entry holds the module (`sglang.srt.ray.engine`)."""
        path = module.replace(".", "/")
        return self.off_surface_for(f"{path}.py") is None and self.off_surface_for(f"{path}/__init__.py") is None

    def off_surface_for(self, file: str, qualname: str | None = None) -> OffSurface | None:
        """The [[off_surface]] entry over `file` (without `qualname`: a whole-file entry only)."""
        if file not in self._off_surface_under:  # asked for every def, often: each file's entries once
            self._off_surface_under[file] = [e for e in self.off_surface if _holds_file(e.prefix, file)]
        return next((e for e in self._off_surface_under[file] if e.holds(qualname)), None)

    @cached_property
    def _off_surface_under(self) -> dict[str, list[OffSurface]]:
        return {}

    def on_request_path(self, file: str) -> bool:
        """Request handling on the surface: a [[sampled]] path that no whole-file [[off_surface]] entry
        holds (that feature is refused at its front door). What runs there depends on each request."""
        return self.sampled_for(file) is not None and self.off_surface_for(file) is None

    def decided_by(self, file: str, qualname: str, action: str, ran: bool) -> str | None:
        """The policy path behind a def's plan decision (`action`: keep, stub or delete), as written:
        the [[off_surface]] entry under whose rules it was stubbed or removed, the [[keep]] entry that
        kept it, or the [[whole]] path that kept a def no recording `ran` whole; None where the
        recordings alone decided."""
        if action != "keep":
            off = self.off_surface_for(file, qualname)
            return off.path if off else None
        if keep := self.files.get(file) or self.keep_for(file, qualname):
            return f"{keep.file}::{keep.qualname}" if keep.qualname else keep.file
        whole = self.whole_for(file, qualname) if not ran else None
        return whole.prefix if whole else None

    @cached_property  # the policy is frozen: its whole-file keeps never change
    def files(self) -> dict[str, Keep]:
        return {k.file: k for k in self.keeps if k.qualname is None}

    def keep_for(self, file: str, qualname: str) -> Keep | None:
        return next((k for k in self._keeps_of.get(file, ()) if k.covers(file, qualname)), None)

    @cached_property
    def _keeps_of(self) -> dict[str, list[Keep]]:
        """File -> its [[keep]] entries, in policy order (keep_for is asked for every def)."""
        out: dict[str, list[Keep]] = {}
        for k in self.keeps:
            out.setdefault(k.file, []).append(k)
        return out


GLOB_CHARACTERS = "*?["


def _exact(path: str, table: str, policy: Path, qualname_allowed: bool) -> str:
    """`path` as written, when it names one place: no pattern (a glob matches more than it means),
    a `::qualname` only on a .py file of a table that takes one."""
    if any(ch in path for ch in GLOB_CHARACTERS):
        raise SlimError(f"policy {policy}: {table} path {path!r} is a pattern: name a file, folder/ or file::qualname")
    file, sep, qualname = path.partition("::")
    if sep and not (qualname_allowed and file.endswith(".py") and qualname):
        raise SlimError(f"policy {policy}: {table} path {path!r}: only a [[keep]] or [[off_surface]] .py file "
                        "takes a ::qualname")
    return path


def _entries(data: dict, table: str, required: tuple[str, ...], path: Path) -> list[dict]:
    """The policy's `[[table]]` entries, each with every required key set (or a one-line error)."""
    entries = data.get(table, [])
    for i, entry in enumerate(entries):
        if missing := [k for k in required if not entry.get(k)]:
            raise SlimError(f"policy {path}: {table} entry {i + 1} lacks {', '.join(missing)}")
    return entries


def _path_entries(data: dict, table: str, required: tuple[str, ...], path: Path) -> list[tuple[str, dict]]:
    """(prefix, entry) for each of the `paths` of each `[[table]]` entry."""
    return [(_exact(prefix, table, path, table == "off_surface"), entry)
            for entry in _entries(data, table, required, path) for prefix in entry["paths"]]


def load_policy(path: Path = POLICY_FILE) -> Policy:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SlimError(f"policy {path}: {exc}") from None
    keeps = []
    for entry in _entries(data, "keep", ("path", "reason", "scenario"), path):
        file, _, qualname = _exact(entry["path"], "keep", path, qualname_allowed=True).partition("::")
        keeps.append(Keep(file, qualname or None, entry["reason"], entry["scenario"]))
    wholes = [Whole(prefix, e["reason"], e["scenario"])
              for prefix, e in _path_entries(data, "whole", ("paths", "reason", "scenario"), path)]
    sampled = [Sampled(prefix, e["reason"]) for prefix, e in _path_entries(data, "sampled", ("paths", "reason"), path)]
    off_surface = [OffSurface(prefix, e["reason"], qualname or None) for spec, e in
                   _path_entries(data, "off_surface", ("paths", "reason"), path)
                   for prefix, _, qualname in [spec.partition("::")]]
    if "plan" in data:  # the plan modes other than "surface" are gone (docs/results.md keeps their figures)
        raise SlimError(f"policy {path}: [plan] is gone: there is one planner (docs/plan-rules.md); remove the table")
    policy = Policy(tuple(keeps), tuple(wholes), tuple(sampled), tuple(off_surface))
    return with_front_door(policy) if path == POLICY_FILE else policy


def with_front_door(policy: Policy, db: Path = SURFACE_DB) -> Policy:
    """The project's policy also removes what slim/surface.toml removes, refused at its front door."""
    from slim.front_door import front_door_items, refused_handlers
    from slim.surface import read_inventory
    from slim.upstream import load_pin

    inventory = read_inventory(db, load_pin().version)["items"]
    items = front_door_items(inventory)
    refused = frozenset(refused_handlers(items, [i for i in inventory if i["kind"] == "route"]))
    return dataclasses.replace(policy, front_door=tuple(items), refused_routes=refused)


def definition_counts(source: bytes) -> Counter:
    """How many times each class and function qualname is defined in a module ('A', 'A.f', 'g',
    'g.inner'; a def under `if`/`try` branches counts once per branch)."""
    found: Counter = Counter()

    def walk(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                found[prefix + child.name] += 1
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return found


QUALNAMES = Memo("qualnames", (sys.modules[__name__],))


def defined_qualnames(source: bytes) -> set[str]:
    """Qualnames of every class and function in a module ('A', 'A.f', 'g', 'g.inner'); kept on
    disk by the source's bytes (every plan checks the policy's entries against ~60 big modules)."""
    return QUALNAMES.get(Memo.key(source), lambda: set(definition_counts(source)))


def entry_paths(policy: Policy) -> list[str]:
    """Every path the policy names, as written: [[keep]], [[whole]], [[sampled]], [[off_surface]]."""
    return ([f"{k.file}::{k.qualname}" if k.qualname else k.file for k in policy.keeps]
            + [e.prefix for e in (*policy.wholes, *policy.sampled)] + [e.path for e in policy.off_surface])


def stale_entries(policy: Policy, tree: Path) -> list[str]:
    """The policy paths that name nothing in the upstream `tree`: no such file, folder/ or def."""
    sources: dict[str, set[str]] = {}
    stale = []
    for entry in entry_paths(policy):
        file, _, qualname = entry.partition("::")
        if not ((tree / file).is_dir() if file.endswith("/") else (tree / file).is_file()):
            stale.append(entry)
        elif qualname:
            if file not in sources:
                sources[file] = defined_qualnames((tree / file).read_bytes())
            if qualname not in sources[file]:
                stale.append(entry)
    return stale


def check_names_upstream(policy: Policy, tree: Path) -> None:
    """A one-line error when a policy entry names nothing upstream: it would silently keep or judge nothing."""
    if stale := stale_entries(policy, tree):
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise SlimError(f"policy entry {stale[0]} names nothing in the upstream tree {tree}{more}: "
                        "correct or remove it")


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
