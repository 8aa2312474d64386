"""The function-level plan: inside kept modules, never-run functions, methods and classes go;
the evidence (what ran, which lines, the class hierarchy) and the per-module edits that follow."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import groupby
from operator import itemgetter

from slim import defs
from slim.errors import SlimError
from slim.plan_types import DefDecision, FileEdits
from slim.policy import Policy
from slim.reach_reasons import NEVER_RUN, Liveness
from slim.reasons import Reason, Why
from slim.recording import Recording
from slim.upstream import PACKAGE


def run_functions(recordings: list[Recording]) -> dict[tuple[str, str, int], list[str]]:
    """(file, qualname, co_firstlineno) -> names of the recordings that ran it."""
    ran: dict[tuple[str, str, int], list[str]] = {}
    for recording in recordings:
        # the raw rows (file, qualname, line, processes), as `recording.functions` frames them: the
        # DataFrame and its Series cost more than the walk
        for key in sorted({(file, qualname, int(line)) for file, qualname, line, _ in recording.data["functions"]}):
            ran.setdefault(key, []).append(recording.name)
    return ran


LINE = itemgetter(1)  # a lines row: (file, line, processes)


def executed_lines(recordings: list[Recording]) -> dict[str, set[int]]:
    """File -> the lines some line-mode recording executed there. Recordings none of which traced
    lines are no line evidence at all (rather than evidence that no line ran): refused."""
    lines: dict[str, set[int]] = {}
    for recording in recordings:  # the raw rows: a DataFrame per recording costs more than the walk
        # a recording's rows come in runs of one file: one set update per run, not per row
        for file, rows in groupby(recording.data.get("lines", []), key=itemgetter(0)):
            lines.setdefault(file, set()).update(map(int, map(LINE, rows)))
    if recordings and not lines:
        raise SlimError('the plan needs line-mode recordings (SLIM_TRACE_LINES=1); none has a lines table')
    return lines



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
            why = Reason(Why.IN_DELETED_CLASS) if inside_dead else NEVER_RUN
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



def with_policy_entries(decisions: list[DefDecision], policy: Policy) -> list[DefDecision]:
    """Each decision with the policy path that decided it (`slim plan --json`: which entry removed which def)."""
    entries = [policy.decided_by(d.file, d.qualname, d.action, ran=d.reason.kind is Why.RAN) for d in decisions]
    return [replace(d, policy_entry=entry) if entry else d for d, entry in zip(decisions, entries, strict=True)]
