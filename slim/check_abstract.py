"""Kept classes the plan made abstract: built anywhere, they raise TypeError before any method runs.

Found on GPU (2026-12-07): `SGLANG_ENABLE_UNIFIED_RADIX_TREE=1` makes the cache registry build
`UnifiedRadixCache`, a `BasePrefixCache` whose overrides of the base's abstract methods
(`match_prefix`, `evict`, ...) the plan had cut as never run; the scheduler died with "Can't
instantiate abstract class". The class stayed in the tree because kept code names it, so no check of
names or imports saw anything wrong.

A class is broken when a name is abstract in its family (it and its ancestors of the tree: an
`@abstractmethod` def), no member of the family defines it concretely, and upstream's version of
some family member defined it where the slimmed one no longer does (the plan deleted the override).
Each place kept code builds it (`Cls(...)`, the name resolved as slim/check_members.py resolves
class names) is judged like a stub's call: dropped by the platform folding or in [[off_surface]]
code, allowed; under a launch-flag test the front door refuses, allowed; anything else (no test, a
test of an environment variable, an accepted flag) is an error, since nothing refuses it first.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from slim.check_members import ClassKey, TreeClasses, class_members, class_names
from slim.check_surface import SurfaceReport
from slim.flag_guards import guarded_attributes, needs, unrefused
from slim.platform_names import folded
from slim.policy import Policy

FOLDED = "constructions of classes the plan made abstract, on branches the platform folding drops (dead on NVIDIA)"
OFF_SURFACE = ("constructions of classes the plan made abstract, in off-surface code (its feature is refused at "
               "the front door: slim/policy.toml's off_surface entry says which)")
REFUSED = "constructions of classes the plan made abstract, under launch flags the front door refuses"
REACHED_ONLY = ("constructions of classes the plan made abstract whose condition a caller computes, each reached "
                "only as REACHED_ONLY_BY says")

# Where the condition is computed away from the construction, no flag test is in sight: the class ->
# (the surface item that must be refused for the claim to hold, or None; why nothing else reaches it).
REACHED_ONLY_BY = {
    "KTEPWrapperMethod": ("flag:--kt-weight-path", "create_kt_config_from_server_args returns None unless "
                          "--kt-weight-path is set (upstream layers/moe/kt_ep_wrapper.py:73)"),
    "SWATokenToKVPoolAllocator": (None, "is_hybrid_swa comes from the model config (model_runner.py:307): "
                                  "sliding-window architectures only, which DeepSeek V2/V3/R1 are not"),
    "PureSWATokenToKVPoolAllocator": (None, "as SWATokenToKVPoolAllocator: hybrid sliding-window models only"),
}


def _abstract(node: ast.ClassDef) -> set[str]:
    """The names a class body declares with @abstractmethod (or abc's abstractproperty)."""
    return {stmt.name for stmt in node.body if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(ast.unparse(d).rsplit(".", 1)[-1] in ("abstractmethod", "abstractproperty")
                    for d in stmt.decorator_list)}


def made_abstract(classes: TreeClasses, key: ClassKey) -> set[str]:
    """The abstract names the class no longer implements because the plan cut an override."""
    family = classes.family(key)
    abstract = set().union(*(_abstract(classes.node(k)) for k in family))
    concrete = set().union(*(class_members(classes.node(k)) - _abstract(classes.node(k)) for k in family))
    cut = set().union(*(classes.upstream_members(k) - class_members(classes.node(k)) for k in family))
    return (abstract - concrete) & cut


def constructions(rel: str, tree: ast.Module, broken: dict[ClassKey, set[str]],
                  classes: TreeClasses) -> dict[tuple[int, int], str]:
    """(line, column) of each `Cls(...)` in a file whose class is broken -> "Cls"."""
    names = class_names(tree, rel, classes)
    return {(node.func.lineno, node.func.col_offset): node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and names.get(node.func.id) in broken}


def check_abstract(rels: dict[str, str], slim: Callable[[str], ast.Module | None],
                   upstream: Callable[[str], ast.Module | None] | None, policy: Policy,
                   flags: tuple[dict[str, str], set[str]] | None = None) -> SurfaceReport:
    """slim check's findings over the constructions of classes the plan made abstract (`rels`,
    `slim`, `upstream` as for slim/check_members.py; no `upstream`: nothing to compare, no findings)."""
    report = SurfaceReport()
    if upstream is None:
        return report
    classes = TreeClasses(rels, slim, upstream)
    broken = {key: gone for key in classes.bases if (gone := made_abstract(classes, key))}
    if not broken:
        return report
    for module, rel in sorted(rels.items(), key=lambda item: item[1]):
        tree = slim(module)
        built = constructions(rel, tree, broken, classes) if tree else {}
        if not built:
            continue
        nvidia = folded(rel, tree)
        live = built if nvidia is tree else constructions(rel, nvidia, broken, classes)
        found = guarded_attributes(rel, nvidia, flags[0], {}, set(live.values())) if flags else []
        guards = {g.where: g for g in found}
        names = class_names(tree, rel, classes)
        for (line, col), name in sorted(built.items()):
            key = names[name]
            what = (f"{rel}:{line}: builds {key[1]}, which the plan made abstract (cut "
                    f"{', '.join(sorted(broken[key]))})")
            guard = guards.get(f"{rel}:{line}")
            if (line, col) not in live:
                report.allow(FOLDED)
            elif policy.off_surface_for(rel, _enclosing(tree, line)) is not None:
                report.allow(OFF_SURFACE)
            elif guard and not unrefused([guard], flags[1]):
                report.allow(REFUSED)
            elif name in REACHED_ONLY_BY and (REACHED_ONLY_BY[name][0] is None
                                              or (flags and REACHED_ONLY_BY[name][0] in flags[1])):
                report.allow(REACHED_ONLY)
            else:
                when = f" when {needs(guard)}, which the front door accepts" if guard else ""
                report.findings.append(f"{what}{when} (keep its overrides, or refuse what leads there)")
    return report


def _enclosing(tree: ast.Module, line: int) -> str:
    """The qualname of the innermost def or class holding `line` ("<module>" at top level)."""
    path: list[str] = []
    body = tree.body
    while True:
        inner = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and n.lineno <= line <= (n.end_lineno or n.lineno)), None)
        if inner is None:
            return ".".join(path) or "<module>"
        path.append(inner.name)
        body = inner.body
