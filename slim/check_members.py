"""Kept code that reads a class member the plan deleted: an AttributeError deep in the server.

The plan may keep a class and delete some of its members (`EventPublisherFactory` stayed, its
`create` went: `--kv-events-config` then failed at start-up). Such a read is worse than a stub's
call: no message says what slim removed. Found by comparing each class of the slimmed tree with the
same class (module and qualname) of upstream, with its ancestors of the tree (bases resolved through
the module's own classes and `from m import` names, any depth):

- a member is deleted when upstream's class or one of those ancestors binds it in its body (a def,
  a nested class, an assignment) and the read no longer finds it; attributes made at run time
  (`self.x = ...` in `__init__`) are in no class body, so they never count;
- the read still finds a member the slimmed class or an ancestor defines (a base's where an
  override went), one their code assigns to `self.`/`cls.` (`self.forward = self.forward_cuda`), one
  `object` defines, and anything on a class with `__getattr__`;
- a read is `Cls.member`, where `Cls` is a class of the module or is imported by
  `from m import Cls [as X]` (relative imports resolved, re-exports followed), or `self.member` /
  `cls.member` in a method of the class (and the defs nested in it); not an assignment.

A `self.member` whose member a kept subclass still defines is told apart: `self` may be that
subclass, though a direct instance of the class would fail.

Limits: names, not types. A member read through anything else (`obj.create`, `self.pool.create`,
`module.Cls.create`, `super().create`) is not followed, nor a base named `module.Base`; a local
variable named like a class is taken for it; a function-level import counts for its whole file; a
read guarded by `hasattr` counts.

Judged as stubs are (slim/check_surface.py, slim/flag_guards.py), on the platform-folded tree: on the
request path a read is an error; in [[off_surface]] code allowed (the feature is refused where the
user names it, whatever flag the code itself tests: `--dp-size` inside PD disaggregation's sender);
elsewhere, under tests of launch flags the front door accepts, an error; the rest is counted in
allowed categories, each with why. The flags are tested where the read
is, as for stub calls: a read whose flag test sits in a caller (the zmq publisher's constructor,
built by a factory the flag's branch calls) is counted, not failed.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from slim.check_surface import SurfaceReport
from slim.flag_guards import guarded_attributes, needs, unrefused
from slim.module_names import module_name, resolve_relative
from slim.platform_names import folded
from slim.policy import Policy
from slim.syntax import module_statements, names_bound

CLASS_NAME, SELF, SUBCLASS = "class name", "self", "self (a kept subclass defines it)"
OBJECT_MEMBERS = frozenset(dir(object))
ClassKey = tuple[str, str]  # (module, class qualname)


@dataclass(frozen=True)
class MemberRef:
    rel: str  # "sglang/srt/x.py"
    line: int
    col: int
    member: str  # "EventPublisherFactory.create"
    how: str  # CLASS_NAME, SELF or SUBCLASS
    where: str  # the enclosing def's qualname, "<module>" at top level


def class_members(node: ast.ClassDef) -> set[str]:
    """The names a class body binds: defs, nested classes, assignments (an annotation alone binds
    nothing; an import in a class body is no member anyone reads)."""
    return {name for stmt in module_statements(node.body)
            if not isinstance(stmt, (ast.Import, ast.ImportFrom))
            and not (isinstance(stmt, ast.AnnAssign) and stmt.value is None)
            for name in names_bound(stmt)}


def module_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """Qualname -> class, for the classes of a module and those nested in them (not in defs)."""
    out: dict[str, ast.ClassDef] = {}

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for stmt in module_statements(body):
            if isinstance(stmt, ast.ClassDef):
                out.setdefault(prefix + stmt.name, stmt)
                walk(stmt.body, f"{prefix}{stmt.name}.")

    walk(tree.body, "")
    return out


def self_assigned(node: ast.ClassDef) -> set[str]:
    """Attributes the class's code sets on `self` or `cls` (`self.forward = self.forward_cuda`)."""
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")}


class TreeClasses:
    """The classes of a slimmed tree, their bases (resolved through each module's imports), and
    what the plan deleted from each (compared with upstream's class of the same module and qualname)."""

    def __init__(self, rels: dict[str, str], slim: Callable[[str], ast.Module | None],
                 upstream: Callable[[str], ast.Module | None]) -> None:
        """`rels`: module -> its file ("sglang/srt/x.py"); `slim`, `upstream`: module -> its tree (None:
        not there)."""
        self.rels, self.slim, self.upstream = rels, slim, upstream
        self.classes = {m: module_classes(tree) for m in rels if (tree := slim(m)) is not None}
        self._names: dict[str, dict[str, ClassKey]] = {}
        self._imports: dict[str, dict[str, tuple[str, str]]] = {}
        self.bases: dict[ClassKey, list[ClassKey]] = {}
        self.subclasses: dict[ClassKey, list[ClassKey]] = defaultdict(list)
        for module, classes in self.classes.items():
            for qualname, node in classes.items():
                names = self.names(module)
                self.bases[(module, qualname)] = [names[b.id] for b in node.bases
                                                  if isinstance(b, ast.Name) and b.id in names]
                for base in self.bases[(module, qualname)]:
                    self.subclasses[base].append((module, qualname))
        self._deleted: dict[ClassKey, frozenset[str]] = {}
        self._upstream: dict[ClassKey, set[str]] = {}

    def names(self, module: str) -> dict[str, ClassKey]:
        """`class_names` of a module of the tree, once per module."""
        if module not in self._names:
            self._names[module] = {}  # an import cycle through re-exports reads it empty
            self._names[module] = class_names(self.slim(module), self.rels[module], self)
        return self._names[module]

    def node(self, key: ClassKey) -> ast.ClassDef:
        return self.classes[key[0]][key[1]]

    def _closure(self, key: ClassKey, step: dict[ClassKey, list[ClassKey]]) -> list[ClassKey]:
        """The classes `step` (bases or subclasses) leads to from `key`, any depth."""
        seen, todo = [], list(step.get(key, ()))
        while todo:
            other = todo.pop()
            if other not in seen and other != key:
                seen.append(other)
                todo += step.get(other, ())
        return seen

    def upstream_members(self, key: ClassKey) -> set[str]:
        if key not in self._upstream:  # read once per class: slim check asks for each class's family
            tree = self.upstream(key[0])
            before = module_classes(tree).get(key[1]) if tree else None
            self._upstream[key] = class_members(before) if before else set()
        return self._upstream[key]

    def family(self, key: ClassKey) -> list[ClassKey]:
        """The class and its ancestors of the tree, any depth."""
        return [key, *self._closure(key, self.bases)]

    def deleted(self, key: ClassKey) -> frozenset[str]:
        """The members upstream's class or its ancestors define that a read through the slimmed
        class no longer finds (in it, its ancestors of the tree, what their code sets on `self`,
        `object`); none for a class with `__getattr__`."""
        if key not in self._deleted:
            family = self.family(key)
            found = OBJECT_MEMBERS.union(*(class_members(self.node(k)) | self_assigned(self.node(k)) for k in family))
            gone = set().union(*(self.upstream_members(k) for k in family)) - found
            self._deleted[key] = frozenset(() if "__getattr__" in found else gone)
        return self._deleted[key]

    def in_subclasses(self, key: ClassKey) -> set[str]:
        """The members the classes of the tree deriving from this one define."""
        return set().union(*(class_members(self.node(k)) for k in self._closure(key, self.subclasses)))

    def home(self, module: str, name: str, hops: int = 0) -> ClassKey | None:
        """The class `name` is in `module` of the tree, following `from m import name` re-exports."""
        if name in self.classes.get(module, {}):
            return module, name
        target = self._imported(module).get(name) if hops < 5 else None
        return self.home(*target, hops + 1) if target else None

    def _imported(self, module: str) -> dict[str, tuple[str, str]]:
        """Name -> (module, name) a module's own `from m import name [as x]` statements bind, once per module."""
        if module not in self._imports:
            tree = self.slim(module) if module in self.rels else None
            self._imports[module] = {alias.asname or alias.name: (resolve_relative(stmt.module, stmt.level,
                                                                                     self.rels[module]), alias.name)
                                     for stmt in (module_statements(tree.body) if tree else ())
                                     if isinstance(stmt, ast.ImportFrom) for alias in stmt.names if alias.name != "*"}
        return self._imports[module]


def class_names(tree: ast.Module, rel: str, classes: TreeClasses) -> dict[str, ClassKey]:
    """Name -> class of the tree, for the names a file binds to classes: its own (module level) and
    those it imports with `from m import Cls` (anywhere in the file; module level wins)."""
    here = module_name(rel)
    names = {name: (here, name) for name in classes.classes.get(here, {}) if "." not in name}
    imports = [stmt for stmt in module_statements(tree.body) if isinstance(stmt, ast.ImportFrom)]
    at_top = {id(stmt) for stmt in imports}
    imports += [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and id(n) not in at_top]
    for stmt in imports:
        module = resolve_relative(stmt.module, stmt.level, rel)
        for alias in stmt.names:
            if alias.name != "*" and (alias.asname or alias.name) not in names:
                if key := classes.home(module, alias.name):
                    names[alias.asname or alias.name] = key
    return names


class _Reads(ast.NodeVisitor):
    """The reads of deleted members in one file."""

    def __init__(self, rel: str, names: dict[str, ClassKey], classes: TreeClasses) -> None:
        self.rel, self.here, self.names, self.classes = rel, module_name(rel), names, classes
        self.scope: list[str] = []  # the qualname so far
        self.owner: str | None = None  # the class whose method (or a def nested in it) holds the code
        self.class_body: str | None = None  # the class whose body is being read, outside its defs
        self.out: list[MemberRef] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        qualname = ".".join([*self.scope, node.name])
        saved = self.owner, self.class_body
        self.owner, self.class_body = None, qualname if qualname in self.classes.classes.get(self.here, {}) else None
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()
        self.owner, self.class_body = saved

    def visit_FunctionDef(self, node) -> None:
        saved = self.owner, self.class_body
        self.owner, self.class_body = self.class_body or self.owner, None
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()
        self.owner, self.class_body = saved

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name):
            name, how = node.value.id, CLASS_NAME
            key = self.names.get(name)
            if name in ("self", "cls") and self.owner:
                key, how = (self.here, self.owner), SELF
            if key and node.attr in self.classes.deleted(key):
                if how == SELF and node.attr in self.classes.in_subclasses(key):
                    how = SUBCLASS
                self.out.append(MemberRef(self.rel, node.lineno, node.col_offset, f"{key[1]}.{node.attr}", how,
                                          ".".join(self.scope) or "<module>"))
        self.generic_visit(node)


def deleted_member_reads(rel: str, tree: ast.Module, classes: TreeClasses) -> list[MemberRef]:
    """Every read in one file of a member the plan deleted from a kept class."""
    reads = _Reads(rel, class_names(tree, rel, classes) if tree is not classes.slim(module_name(rel))
                   else classes.names(module_name(rel)), classes)
    reads.visit(tree)
    return reads.out


FOLDED = "reads of deleted class members on branches the platform folding drops (dead on NVIDIA)"
SUBCLASS_NOTE = ("`self` reads of members deleted from a class that a kept subclass still defines (`self` may be "
                 "that subclass)")
REFUSED = "reads of deleted class members under launch flags the front door refuses"
UNGUARDED = ("reads of deleted class members off the request path, under no launch-flag test in their file (as for "
             "stub calls: a caller's branch no recording took leads there, if any)")
NO_FLAGS = "reads of deleted class members off the request path (launch flags not given: not judged)"
OFF_SURFACE = ("reads of deleted class members in off-surface code (its feature is refused at the front door: "
               "slim/policy.toml's off_surface entry says which and quotes the branch that leads there)")


def judge_reads(rel: str, tree: ast.Module, reads: list[MemberRef], live: set[tuple[int, int]], policy: Policy,
                flags: tuple[dict[str, str], set[str]] | None, report: SurfaceReport) -> None:
    """Errors and allowed categories for one file's reads: `tree` is the file platform-folded, `live`
    the (line, column) of the reads still there; `flags`, when given, the launch flags (ServerArgs
    field -> flag) and the ids of the surface items the front door refuses."""
    guarded = {}
    if flags and not policy.on_request_path(rel):
        wanted = {(r.line, r.col): r.member for r in reads if (r.line, r.col) in live and r.how != SUBCLASS}
        guarded = {(g.where, g.stub): g for g in guarded_attributes(rel, tree, flags[0], wanted)}
    for r in reads:
        what = f"{r.member}, which slim deleted, read by {r.how} in {r.where}"
        guard = guarded.get((f"{rel}:{r.line}", r.member))
        if (r.line, r.col) not in live:
            report.allow(FOLDED)
        elif r.how == SUBCLASS:
            report.allow(SUBCLASS_NOTE)
        elif policy.on_request_path(rel):
            report.findings.append(f"{rel}:{r.line}: {what} on the request path (keep the member)")
        elif flags is None:
            report.allow(NO_FLAGS)
        elif policy.off_surface_for(rel, r.where) is not None:  # a flag tested there is not the one that leads there
            report.allow(OFF_SURFACE)
        elif guard and unrefused([guard], flags[1]):
            report.findings.append(f"{rel}:{r.line}: {what} when {needs(guard)}, which the front door accepts "
                                   "(refuse it in slim/surface.toml or keep the member)")
        elif guard:
            report.allow(REFUSED)
        else:
            report.allow(UNGUARDED)


def check_members(rels: dict[str, str], slim: Callable[[str], ast.Module | None],
                  upstream: Callable[[str], ast.Module | None] | None, policy: Policy,
                  flags: tuple[dict[str, str], set[str]] | None = None,
                  classes: TreeClasses | None = None) -> SurfaceReport:
    """slim check's findings over the reads of deleted members in the tree: `rels` maps each module
    to its file, `slim` and `upstream` a module to its parsed tree (None where absent; no `upstream`,
    nothing to compare with: no findings)."""
    report = SurfaceReport()
    if upstream is None:
        return report
    classes = classes or TreeClasses(rels, slim, upstream)  # slim check builds one for both checks
    for module, rel in sorted(rels.items(), key=lambda item: item[1]):
        tree = slim(module)
        reads = deleted_member_reads(rel, tree, classes) if tree else []
        if not reads:
            continue
        nvidia = folded(rel, tree)
        live = {(r.line, r.col) for r in (reads if nvidia is tree else deleted_member_reads(rel, nvidia, classes))}
        judge_reads(rel, nvidia, reads, live, policy, flags, report)
    return report
