"""Leave-one-out: what a plan made without one recording would have cut from what that run used.

A stand-in for "unseen scenarios within the same feature surface" that needs no GPU: each
committed recording is held out in turn, the plan is made from the others, and the functions
the held-out run ran are looked up in it. A function in a module the plan deletes, or one it
deletes or stubs (itself or an enclosing def), is code the unseen run would have missed. Class bodies
and module-level comprehensions run on import (a registry scan imports every model), so they
say nothing and are left out; so are modules in which the run ran nothing, and, in a module
the plan deletes, what that module's own import ran (slim.reach.import_time_names): without
the module it is not imported, and nothing else named it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slim.plan import Plan, run_functions
from slim.recording import Recording


@dataclass
class Missed:
    scenario: str
    modules_used: int  # modules in which the held-out run ran a function
    functions_run: int
    modules: list[str] = field(default_factory=list)  # of those, the ones the plan deletes
    functions: list[str] = field(default_factory=list)  # "file::qualname" run by it, deleted by the plan


def missed_by(plan: Plan, held_out: Recording, class_bodies: set[tuple[str, str]],
              import_time: dict[str, set[str]] | None = None) -> Missed:
    """What `plan` (made without `held_out`) deletes of what `held_out` ran; `class_bodies`:
    (file, qualname) of the classes in the files it ran code in; `import_time`: per file, the
    names its own import runs."""
    import_time = import_time or {}
    kept = set(plan.kept)
    deleted: dict[str, list[tuple[str, int]]] = {}
    for d in plan.defs:
        if d.action in ("delete", "stub"):  # a stub raises: as missing as a deleted def
            deleted.setdefault(d.file, []).append((d.qualname, d.line))
    ran = sorted({(f, q, line) for f, q, line in run_functions([held_out])
                  if not q.startswith("<") and (f, q) not in class_bodies
                  and not (f not in kept and q.split(".")[0] in import_time.get(f, ()))})
    missed = Missed(held_out.scenario, len({f for f, _, _ in ran}), len(ran))
    missed.modules = sorted({f for f, _, _ in ran if f not in kept})
    for file, qualname, line in ran:
        # A def deleted by (qualname, line): two defs may share a name (upstream redefines handlers).
        if file not in kept or any((qualname, line) == (q, at) or qualname.startswith(q + ".")
                                   for q, at in deleted.get(file, ())):
            missed.functions.append(f"{file}::{qualname}")
    return missed


def import_time(tree, files) -> dict[str, set[str]]:
    """Per file of the upstream tree: the names its own import runs."""
    from slim.defs import index_module
    from slim.reach import import_time_names

    return {f: import_time_names(index_module(f, (tree / f).read_bytes())) for f in files}


def class_bodies(tree, files) -> set[tuple[str, str]]:
    """(file, qualname) of every class defined in `files` of the upstream tree."""
    import ast

    from slim.defs import collect_defs

    return {(f, d.qualname) for f in files for d in collect_defs(ast.parse((tree / f).read_bytes()))
            if d.kind == "class"}
