"""The Plan: a pure function from (upstream tree, recordings) to what the slimmed tree keeps.

Module level: a Python module (or extension module) is kept when any recording
imported it; a package `__init__.py` is kept when anything beneath it is kept,
since importing a submodule runs it; a data file (JSON configs, JIT kernel
sources) is kept when the nearest folder holding modules kept any of them.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath

from slim import defs, index_cache
from slim.errors import SlimError
from slim.policy import Policy, check_names_upstream, load_policy
from slim.reach import NEVER_RUN, RAN, Liveness, reach
from slim.recording import Recording
from slim.upstream import OUT_OF_SCOPE, PACKAGE

MODULE_SUFFIXES = (".py", ".so")


@dataclass(frozen=True)
class FileDecision:
    path: str  # relative to the upstream root, e.g. "sglang/srt/utils.py"
    keep: bool
    reason: str


@dataclass(frozen=True)
class DefDecision:
    file: str
    qualname: str
    line: int  # co_firstlineno (first decorator line)
    kind: str  # function | method | class
    action: str  # keep | delete | stub (the signature stays, the body raises)
    reason: str
    lines: int
    policy_entry: str | None = None  # the slim/policy.toml path that decided it, as written there


@dataclass
class FileEdits:
    """What `slim apply` does to one kept module (besides deleting its defs)."""
    helpers: list[str] = field(default_factory=list)  # platform probes folded to False: is_hip()
    constants: list[str] = field(default_factory=list)  # module constants folded to False: _is_hip
    registry: list[str] = field(default_factory=list)  # names dropped from registry literals and __all__
    imports: list[str] = field(default_factory=list)  # sglang import bindings nothing live reads (there)



@dataclass
class Plan:
    recordings: list[str]
    files: list[FileDecision] = field(default_factory=list)
    defs: list[DefDecision] = field(default_factory=list)  # empty: module level only
    edits: dict[str, FileEdits] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)

    def to_json(self) -> str:
        """The whole plan, sorted, for `slim plan --json`."""
        return json.dumps({"recordings": self.recordings, "files": [asdict(d) for d in self.files],
                           "defs": [asdict(d) for d in self.defs],
                           "edits": {k: asdict(v) for k, v in sorted(self.edits.items())},
                           "policy": [asdict(k) for k in self.policy.keeps],
                           "whole": [asdict(w) for w in self.policy.wholes]}, indent=1, sort_keys=True)

    def defs_by_file(self) -> dict[str, list[DefDecision]]:
        out: dict[str, list[DefDecision]] = {}
        for d in self.defs:
            out.setdefault(d.file, []).append(d)
        return out

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


UNREACHED = "imported, but no code that ran reaches it"


def make_plan(files: list[str], recordings: list[Recording], extra: dict[str, str] | None = None,
              unreached: dict[str, str] | None = None) -> Plan:
    """Decide keep/remove for every upstream file from what the recordings imported
    (`extra`: modules kept whatever the recordings say, with the reason; `unreached`: imported
    modules removed all the same, with the reason)."""
    imported = imported_files(recordings)
    extra, unreached = extra or {}, unreached or {}
    kept_modules = {f for f in files if is_module(f) and (f in imported or f in extra) and f not in unreached}
    needed_inits = {init for f in kept_modules for init in _ancestor_inits(f)}
    module_dirs = {PurePosixPath(f).parent.as_posix() for f in files if is_module(f)}
    live_dirs = {PurePosixPath(f).parent.as_posix() for f in kept_modules | needed_inits}
    plan = Plan(recordings=sorted(r.name for r in recordings))
    for path in files:
        if path in kept_modules and path not in imported:
            decision = FileDecision(path, True, extra[path])
        elif path in kept_modules:
            decision = FileDecision(path, True, f"imported by {', '.join(imported[path])}")
        elif path in needed_inits:
            decision = FileDecision(path, True, "package __init__ of kept modules")
        elif path in unreached:
            decision = FileDecision(path, False, unreached[path])
        elif is_module(path):
            decision = FileDecision(path, False, "never imported in any recording")
        elif _module_home(path, module_dirs) in live_dirs:
            decision = FileDecision(path, True, "data file of a kept package")
        else:
            decision = FileDecision(path, False, "data file of a removed package")
        plan.files.append(decision)
    return plan


# ---------------------------------------------------------------------------------------------
# Function level: inside kept modules, never-run functions, methods and classes go.




def run_functions(recordings: list[Recording]) -> dict[tuple[str, str, int], list[str]]:
    """(file, qualname, co_firstlineno) -> names of the recordings that ran it."""
    ran: dict[tuple[str, str, int], list[str]] = {}
    for recording in recordings:
        frame = recording.functions
        for key in sorted(set(zip(frame["file"], frame["qualname"], frame["line"].astype(int), strict=True))):
            ran.setdefault(key, []).append(recording.name)
    return ran


def executed_lines(recordings: list[Recording]) -> dict[str, set[int]]:
    """File -> the lines some line-mode recording executed there. Recordings none of which traced
    lines are no line evidence at all (rather than evidence that no line ran): refused."""
    lines: dict[str, set[int]] = {}
    for recording in recordings:  # the raw rows: a DataFrame per recording costs more than the walk
        for file, line, _ in recording.data.get("lines", []):
            lines.setdefault(file, set()).add(int(line))
    if recordings and not lines:
        raise SlimError('the plan needs line-mode recordings (SLIM_TRACE_LINES=1); none has a lines table')
    return lines


def _index_all(tree: Path, files: list[str]) -> list:
    """Index the kept modules: from the index cache where it has them, the others anew (and
    into the cache)."""
    keys = {f: index_cache.entry_key(f, (tree / f).read_bytes()) for f in files}
    indexes = {f: index_cache.load(keys[f]) for f in files}
    missing = [f for f in files if indexes[f] is None]
    for path, pickled in zip(missing, _index_fresh(tree, missing), strict=True):
        index_cache.store(keys[path], pickled)
        indexes[path] = pickle.loads(pickled)
    return [indexes[f] for f in files]


def _index_fresh(tree: Path, files: list[str]) -> list[bytes]:
    """Each module's index, pickled; in worker processes on a big tree (ast is CPU-bound)."""
    jobs = [(str(tree), f) for f in files]
    if len(files) < 50:
        return [_index_one(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        return list(pool.map(_index_one, jobs, chunksize=8))


def _index_one(job) -> bytes:
    """One module's index, pickled: the form both the cache and the worker's reply take."""
    tree, path = job
    return pickle.dumps(defs.index_module(path, (Path(tree) / path).read_bytes()))


def _hierarchy_runs(indexes, ran_keys) -> dict[str, set[str]]:
    """Class qualname -> method names run anywhere in its class hierarchy: its ancestors and
    everything beneath them (siblings too: `self.apply()` in a base dispatches to any of them).
    Bases are matched by name: over-approximate on purpose."""
    classes: dict[str, list[tuple[str, str]]] = {}  # class name -> [(file, qualname)]
    bases: dict[tuple[str, str], list[str]] = {}
    ran_methods: dict[tuple[str, str], set[str]] = {}
    for index in indexes:
        for d in index.defs:
            if d.kind == "class":
                classes.setdefault(d.name, []).append((index.path, d.qualname))
                bases[(index.path, d.qualname)] = [b.rsplit(".", 1)[-1] for b in d.bases if b]
            elif d.kind == "method" and (index.path, d.qualname, d.line) in ran_keys:
                ran_methods.setdefault((index.path, d.parent), set()).add(d.name)
    children: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for cls, names in bases.items():
        for name in names:
            for parent in classes.get(name, []):
                children.setdefault(parent, []).append(cls)

    def closure(start, edges):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    up = lambda c: [p for n in bases.get(c, []) for p in classes.get(n, [])]  # noqa: E731
    down = lambda c: children.get(c, [])  # noqa: E731
    below: dict[tuple[str, str], set[str]] = {}  # class -> method names run in it or beneath it

    def run_below(cls) -> set[str]:
        if cls not in below:
            below[cls] = ran_methods.get(cls, set()).union(*(ran_methods.get(c, set()) for c in closure(cls, down)))
        return below[cls]

    return {cls: set().union(*(run_below(r) for r in closure(cls, up) | {cls})) for cls in bases}


def entry_modules(recordings: list[Recording]) -> set[str]:
    """Files some recording ran as a script (`python -m sglang.launch_server`)."""
    found: set[str] = set()
    for recording in recordings:
        frame = recording.modules
        found |= set(frame.loc[frame["module"].isin(["__main__", "__mp_main__"]), "file"].dropna())
    return found


def decide_defs(indexes, live: Liveness) -> tuple[list[DefDecision], dict[str, FileEdits]]:
    """Keep/delete for every def of the live modules (kept: what `reach` found live, with its
    reason); and per module the edits that follow: dead import bindings of sglang modules (no live
    code needs the name, or no live code can read it there: `unused_sglang_imports`) and the
    registry / `__all__` entries that name dead definitions or imports."""
    decisions, edits = [], {}
    unused_here = unused_sglang_imports(indexes, live)
    for index in indexes:
        dead_classes: set[str] = set()
        for d in index.defs:
            reason = live.defs.get((index.path, d.qualname, d.line))
            if reason:
                action = "stub" if (index.path, d.qualname, d.line) in live.stubs else "keep"
                decisions.append(DefDecision(index.path, d.qualname, d.line, d.kind, action, reason, d.lines))
                continue
            inside_dead = d.parent is not None and d.parent in dead_classes
            if d.kind == "class":
                dead_classes.add(d.qualname)
            why = f"{NEVER_RUN} (its class is deleted)" if inside_dead else NEVER_RUN
            decisions.append(DefDecision(index.path, d.qualname, d.line, d.kind, "delete", why, d.lines))
        live_names = {d.name for d in index.defs if d.parent is None
                      and (index.path, d.qualname, d.line) in live.defs}
        dead_imports = {b.name for b in index.bindings if b.name != "*" and b.name not in live.needed
                        and b.targets[0].startswith(PACKAGE)} | unused_here.get(index.path, set())
        live_names |= {b.name for b in index.bindings if b.name not in dead_imports}
        bound = {d.name for d in index.defs if d.parent is None} | {b.name for b in index.bindings}
        dropped = sorted((bound - live_names) & (set(+index.registry) | index.exported))
        if index.helpers or index.constants or dropped or dead_imports:
            edits[index.path] = FileEdits(sorted(index.helpers), sorted(index.constants), dropped,
                                          sorted(dead_imports))
    return decisions, edits


def _kept_uses(index, live: Liveness) -> Counter:
    """The names a live module's kept code uses: its module-level code, the bodies of its kept
    defs (a class only its own lines: its methods count one by one), the signatures of its stubs."""
    uses = Counter(index.body_refs) + Counter(dict.fromkeys(index.exported, 1))
    for d in index.defs:
        key = (index.path, d.qualname, d.line)
        if key in live.stubs:
            uses.update(d.header_refs)
        elif key in live.defs:
            uses.update(d.own_refs)  # as reach needs them: a def's own lines, its members on their own
    return +uses


def unused_sglang_imports(indexes, live: Liveness) -> dict[str, set[str]]:
    """Per live module, the sglang import bindings its kept code does not use, where
    - no code imports that name from it (a re-export: `from m import name`, at module level or in a def),
    - no code may read it as an attribute: the module is not bound as an object anywhere
      (`import m`, `from package import m`, a star import of m; at module level or in a def);
    - the modules the import loads are still loaded by another kept import (no import-time
      registration is lost).
    Package `__init__.py` files are left alone: they are the re-export hubs."""
    imported = {t for index in indexes for b in index.bindings for t in b.targets} | \
        {t for index in indexes for d in index.defs for t in d.imports}
    namespaces = {m for index in indexes for m in index.namespaces}
    candidates: dict[str, set[str]] = {}
    for index in indexes:
        here = defs.module_name(index.path)
        if index.path.endswith("__init__.py") or here in namespaces:
            continue
        uses = _kept_uses(index, live)
        candidates[index.path] = {b.name for b in index.bindings if b.name != "*"
                                  and b.targets[0].startswith(PACKAGE) and not uses[b.name]
                                  and f"{here}.{b.name}" not in imported}
    modules = {defs.module_name(index.path) for index in indexes}
    still_loaded = {t for index in indexes for b in index.bindings
                    if (b.name == "*" or b.name in live.needed) and b.name not in candidates.get(index.path, ())
                    for t in b.targets}
    return {path: {b.name for b in index.bindings if b.name in candidates[path]
                   and all(t in still_loaded or t not in modules for t in b.targets)}
            for index in indexes if (path := index.path) in candidates}


def policy_files(tree: Path, files: list[str], policy: Policy) -> dict[str, str]:
    """Policy-kept files plus the sglang modules they import at module level, transitively."""
    import ast

    by_module = {defs.module_name(f): f for f in files if f.endswith(".py")}
    out: dict[str, str] = {}
    todo = [(f, f"kept by policy: {k.reason} (scenario {k.scenario})") for f, k in policy.files.items()
            if f in files]
    while todo:
        path, reason = todo.pop()
        if path in out:
            continue
        out[path] = reason
        tree_ast = ast.parse((tree / path).read_bytes())
        for stmt in tree_ast.body:
            if isinstance(stmt, ast.Import):
                names = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                mod = defs.resolve_relative(stmt.module, stmt.level, path)
                names = [mod] + [f"{mod}.{a.name}" for a in stmt.names]
            else:
                continue
            for name in names:
                if name in by_module:
                    todo.append((by_module[name], f"imported by policy-kept {path}"))
    return out


LAZY_ON_REQUEST_PATH = "imported lazily by request handling"


def request_path_imports(tree: Path, files: list[str], imported: set[str], policy: Policy) -> dict[str, str]:
    """sglang modules that request-handling code ([[sampled]] paths outside wholly [[off_surface]]
    files) imports inside a def or under an `if` (a flag, a request field or a setting loads them:
    `from sglang.srt.entrypoints.ssl_utils import SSLCertRefresher` under --enable-ssl-refresh), which
    no recording imported: they join the plan, so reach judges them instead of the file rule
    deleting them. Followed through the added modules that are request handling themselves."""
    by_module = {defs.module_name(f): f for f in files if f.endswith(".py")}
    on_path = [f for f in imported if policy.sampled_for(f) is not None and policy.off_surface_for(f) is None]
    out: dict[str, str] = {}
    todo, seen = list(on_path), set(on_path)
    while todo:
        path = todo.pop()
        for node in ast.walk(ast.parse((tree / path).read_bytes())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.If):
                for name in _imported_names(node, path):
                    target = by_module.get(name)
                    if target and target not in imported and target not in out and \
                            policy.off_surface_for(target) is None:
                        out[target] = f"{LAZY_ON_REQUEST_PATH} ({path})"
                        if target not in seen and policy.sampled_for(target) is not None:
                            seen.add(target)
                            todo.append(target)
    for path, reason in _module_level_imports(tree, by_module, list(out)).items():  # what loading them loads
        if path not in imported:
            out.setdefault(path, reason)
    return out


def _module_level_imports(tree: Path, by_module: dict[str, str], paths: list[str]) -> dict[str, str]:
    """The sglang modules the module-level imports of `paths` load, transitively."""
    out: dict[str, str] = {}
    todo = list(paths)
    while todo:
        path = todo.pop()
        for stmt in ast.parse((tree / path).read_bytes()).body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                for name in _imported_names(stmt, path):
                    if (target := by_module.get(name)) and target not in out and target not in paths:
                        out[target] = f"imported by {path}"
                        todo.append(target)
    return out


def _imported_names(node, path: str) -> list[str]:
    """Module names the imports directly inside `node`'s body (and its branches) may load."""
    names = []
    for stmt in ast.walk(node):
        if isinstance(stmt, ast.Import):
            names += [a.name for a in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            mod = defs.resolve_relative(stmt.module, stmt.level, path)
            names += [mod] + [f"{mod}.{a.name}" for a in stmt.names]
    return names


def with_policy_entries(decisions: list[DefDecision], policy: Policy) -> list[DefDecision]:
    """Each decision with the policy path that decided it (`slim plan --json`: which entry removed which def)."""
    entries = [policy.decided_by(d.file, d.qualname, d.action, ran=d.reason.startswith(RAN)) for d in decisions]
    return [replace(d, policy_entry=entry) if entry else d for d, entry in zip(decisions, entries, strict=True)]


def make_function_plan(tree: Path, files: list[str], recordings: list[Recording],
                       policy: Policy | None = None) -> Plan:
    """The full plan: the imported modules (make_plan) with a keep/delete decision for every def.
    The modules narrow to what the code that ran reaches (slim.reach)."""
    policy = policy if policy is not None else load_policy()
    check_names_upstream(policy, tree)  # an entry naming nothing would silently judge nothing
    extra = policy_files(tree, files, policy)
    extra |= request_path_imports(tree, files, set(imported_files(recordings)) | set(extra), policy)
    imported = make_plan(files, recordings, extra=extra)
    ran = run_functions(recordings)
    indexes = _index_all(tree, [p for p in imported.kept if p.endswith(".py")])
    executed = executed_lines(recordings)
    live = reach(indexes, ran, policy, _hierarchy_runs(indexes, set(ran)), entry_modules(recordings), executed)
    unreached = {i.path: UNREACHED for i in indexes if i.path not in live.modules}
    plan = make_plan(files, recordings, extra=extra, unreached=unreached)
    plan.defs, plan.edits = decide_defs([i for i in indexes if i.path in live.modules], live)
    plan.defs = with_policy_entries(plan.defs, policy)
    plan.policy = policy
    return plan
