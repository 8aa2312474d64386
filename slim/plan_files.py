"""The file-level plan: which upstream files the slimmed tree keeps.

Module level: a Python module (or extension module) is kept when any recording
imported it; a package `__init__.py` is kept when anything beneath it is kept,
since importing a submodule runs it; a data file (JSON configs, JIT kernel
sources) is kept when the nearest folder holding modules kept any of them.
Policy-kept files, the modules request handling imports lazily and the modules kept code loads
from [[whole]] paths join it (`extra`)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from slim import defs
from slim.import_facts import import_facts
from slim.plan_types import FileDecision, Plan
from slim.policy import Policy
from slim.reasons import Reason, Why, policy_kept
from slim.recording import Recording
from slim.upstream import OUT_OF_SCOPE, PACKAGE

MODULE_SUFFIXES = (".py", ".so")


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


UNREACHED = Reason(Why.UNREACHED)


def recorded_imports(recordings: list[Recording]) -> list[str]:
    """Top-level names any recorded process imported (its `third_party` list, stdlib included)."""
    return sorted({top for r in recordings for p in r.data.get("processes", []) for top in p.get("third_party", [])})


def make_plan(files: list[str], recordings: list[Recording], extra: dict[str, Reason] | None = None,
              unreached: dict[str, Reason] | None = None) -> Plan:
    """Decide keep/remove for every upstream file from what the recordings imported
    (`extra`: modules kept whatever the recordings say, with the reason; `unreached`: imported
    modules removed all the same, with the reason)."""
    imported = imported_files(recordings)
    extra, unreached = extra or {}, unreached or {}
    kept_modules = {f for f in files if is_module(f) and (f in imported or f in extra) and f not in unreached}
    needed_inits = {init for f in kept_modules for init in _ancestor_inits(f)}
    module_dirs = {PurePosixPath(f).parent.as_posix() for f in files if is_module(f)}
    live_dirs = {PurePosixPath(f).parent.as_posix() for f in kept_modules | needed_inits}
    plan = Plan(recordings=sorted(r.name for r in recordings), recorded_imports=recorded_imports(recordings))
    for path in files:
        if path in kept_modules and path not in imported:
            decision = FileDecision(path, True, extra[path])
        elif path in kept_modules:
            decision = FileDecision(path, True, Reason(Why.IMPORTED, ", ".join(imported[path])))
        elif path in needed_inits:
            decision = FileDecision(path, True, Reason(Why.PACKAGE_INIT))
        elif path in unreached:
            decision = FileDecision(path, False, unreached[path])
        elif is_module(path):
            decision = FileDecision(path, False, Reason(Why.NEVER_IMPORTED))
        elif _module_home(path, module_dirs) in live_dirs:
            decision = FileDecision(path, True, Reason(Why.DATA_KEPT))
        else:
            decision = FileDecision(path, False, Reason(Why.DATA_REMOVED))
        plan.files.append(decision)
    return plan



def policy_files(tree: Path, files: list[str], policy: Policy) -> dict[str, Reason]:
    """Policy-kept files plus the sglang modules they import at module level, transitively."""
    by_module = {defs.module_name(f): f for f in files if f.endswith(".py")}
    kept = {f: policy_kept(k.reason, k.scenario) for f, k in policy.files.items() if f in files}
    return kept | _module_level_imports(tree, by_module, list(kept), Why.IMPORTED_BY_POLICY_KEPT)


def request_path_imports(tree: Path, files: list[str], imported: set[str], policy: Policy) -> dict[str, Reason]:
    """sglang modules that request-handling code ([[sampled]] paths outside wholly [[off_surface]]
    files) imports inside a def or under an `if` (a flag, a request field or a setting loads them:
    `from sglang.srt.entrypoints.ssl_utils import SSLCertRefresher` under --enable-ssl-refresh), which
    no recording imported: they join the plan, so reach judges them instead of the file rule
    deleting them. Followed through the added modules that are request handling themselves."""
    def admit(importer: str, target: str, lazy: bool) -> tuple[Reason, bool] | None:
        if lazy and policy.off_surface_for(target) is None:
            return Reason(Why.LAZY_ON_REQUEST_PATH, importer), policy.sampled_for(target) is not None
        return None

    on_path = [f for f in imported if policy.on_request_path(f)]
    return _joining(tree, files, on_path, imported, admit)


def whole_path_imports(tree: Path, files: list[str], kept: set[str], policy: Policy) -> dict[str, Reason]:
    """sglang modules under a [[whole]] path that a kept module imports, inside a def or at module
    level, which no recording imported (`modelopt_quant` loads the sm100 `flashinfer_cutedsl` MoE
    runner inside a method): [[whole]] keeps what kept code references whole, so the modules it
    loads join the plan too and reach judges them; followed through the added modules."""
    def admit(importer: str, target: str, lazy: bool) -> tuple[Reason, bool] | None:
        if policy.whole_for(target) is not None:
            return Reason(Why.IMPORTED_BY_POLICY_KEPT, importer), True
        return None

    return _joining(tree, files, kept, kept, admit)


def _joining(tree: Path, files: list[str], start, kept: set[str], admit) -> dict[str, Reason]:
    """Modules outside `kept` that `admit(importer, target, lazy)` lets join, walking the imports of
    `start` (and of each joined module it says to walk into), then what the joined modules load at
    module level: path -> Reason."""
    by_module = {defs.module_name(f): f for f in files if f.endswith(".py")}
    out: dict[str, Reason] = {}
    todo = sorted(start)  # sorted: the same plan whatever the hash seed
    seen = set(todo)
    while todo:
        path = todo.pop()
        module_level, lazy = import_facts(tree, path)
        for name, is_lazy in [*((n, False) for n in module_level), *((n, True) for n in lazy)]:
            target = by_module.get(name)
            verdict = admit(path, target, is_lazy) if target and target not in kept and target not in out else None
            if verdict:
                out[target], walk = verdict
                if walk and target not in seen:
                    seen.add(target)
                    todo.append(target)
    for path, reason in _module_level_imports(tree, by_module, list(out), Why.IMPORTED).items():  # what they load
        if path not in kept:
            out.setdefault(path, reason)
    return out


def _module_level_imports(tree: Path, by_module: dict[str, str], paths: list[str], why: Why) -> dict[str, Reason]:
    """The sglang modules the module-level imports of `paths` load, transitively: path -> Reason(why, <importer>)
    (depth first: the importer named is the one whose import was followed first)."""
    out: dict[str, Reason] = {}
    todo: list[tuple[str, Reason | None]] = [(path, None) for path in paths]
    done: set[str] = set()
    while todo:
        path, reason = todo.pop()
        if path in done:
            continue
        done.add(path)
        if reason:
            out[path] = reason
        todo += [(by_module[name], Reason(why, path)) for name in import_facts(tree, path)[0] if name in by_module]
    return out
