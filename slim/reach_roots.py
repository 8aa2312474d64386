"""The roots reach starts from beyond what ran: what the policy's code may call (`_policy_reach`),
and the runs that are only a module's own import-time code, which are no roots (`_import_time_roots`)."""

from __future__ import annotations

from collections import defaultdict

from slim.defs import Def, ModuleIndex, module_name
from slim.policy import Policy
from slim.reach_reasons import Key, _key, _positive
from slim.reasons import Why


def _policy_reach(indexes: list[ModuleIndex], policy: Policy, ran: dict[Key, list[str]]) -> set[Key]:
    """Defs the policy's code may call on its hardware, so no stub and no never-instantiated cut
    may touch them: the top-level functions and classes (a class with its members) that
    policy-kept code (`[[keep]]` entries, and the defs and module bodies of `[[whole]]` paths)
    names in its own module or in a module it imports (through a package's re-exports too);
    followed further through every def that never ran, as its callees may sit in
    modules where nothing ran (the only ones stubs reach), while what a def that ran calls is judged
    by the recordings. Method names are not followed (every class has a `forward`)."""
    by_module = {module_name(i.path): i.path for i in indexes}
    index = {i.path: i for i in indexes}
    top: dict[tuple[str, str], list[Def]] = defaultdict(list)
    members: dict[tuple[str, str], list[Def]] = defaultdict(list)
    for i in indexes:
        for d in i.defs:
            if d.parent is None:
                top[(i.path, d.name)].append(d)
            else:
                members[(i.path, d.qualname.split(".")[0])].append(d)

    def imported(paths) -> set[str]:
        return {by_module[t] for p in paths for b in index[p].bindings for t in b.targets if t in by_module}

    def scope(path: str, group: list[Def]) -> set[str]:
        direct = {path} | imported([path]) | {by_module[m] for d in group for m in d.imports if m in by_module}
        return direct | imported([p for p in direct if p.endswith("__init__.py")])  # re-exports

    def by_policy(path: str, qualname: str) -> bool:  # a [[keep]] or a [[whole]] path holds it
        return policy.keep_for(path, qualname) is not None or policy.whole_for(path, qualname) is not None

    todo = [(i.path, d) for i in indexes for d in i.defs if d.parent is None and by_policy(i.path, d.qualname)]
    modules = set(policy.files) | {i.path for i in indexes if policy.whole_for(i.path)}
    for path in modules & set(index):  # a policy-kept module's own import-time code
        todo += [(p, t) for p in scope(path, []) for n in _positive(index[path].body_refs)
                 for t in top.get((p, n), [])]
    live: set[Key] = set()
    while todo:
        path, d = todo.pop()
        if _key(path, d) in live:
            continue
        group = [d, *members[(path, d.qualname)]]
        live.update(_key(path, m) for m in group)
        if _key(path, d) in ran and not by_policy(path, d.qualname):
            continue
        names = {n for m in group for n in _positive(m.refs)}
        todo += [(p, t) for p in scope(path, group) for n in names for t in top.get((p, n), [])]
    return live


def import_time_names(index: ModuleIndex) -> set[str]:
    """Names a module's own import runs: what its body uses, the decorators it applies, the bases
    of its classes (`__init_subclass__`)."""
    names = set(_positive(index.body_refs))
    for d in index.defs:
        names.update(x.split(".")[0] for x in d.decorators)
        names.update(b.rsplit(".", 1)[-1] for b in d.bases)
    return names


def _import_time_roots(walker, ignored: set[Key]) -> set[Key]:
    """The runs of modules no kept code imports (a registry scan loaded them) that are only their
    own import-time code: a function the module body calls, a decorator it applies, a class it
    instantiates or subclasses (`to_2tuple = _ntuple(2)`). Such a module was loaded and never
    used; dropping these runs as roots lets it go. A run nothing at import time explains (the
    forward of the model class the registry picked) keeps it."""
    found: set[Key] = set()
    for path in walker.out.modules:
        if path in walker.loaded or path.endswith("__init__.py"):
            continue
        index = walker.index[path]
        at_import = import_time_names(index)
        roots = {_key(path, d): d for d in index.defs if _key(path, d) in walker.fixed
                 and walker.fixed[_key(path, d)].kind is Why.RAN and _key(path, d) not in ignored}
        top = {(d.qualname.split(".")[0]) for d in roots.values()}
        if roots and top <= at_import:
            found |= set(roots)
    return found
