"""What the code that ran can reach: a least fixpoint over the kept modules' static index.

Roots are the functions and methods some recording ran, the keep-policy and the `__main__`
modules. From there liveness spreads by name, conservatively (any def of a needed name counts,
whatever object the name is looked up on):
- a live def or live module body needs every identifier it uses (and words in its strings);
- a needed name makes live the top-level defs of that name in live modules, the methods of that
  name in live classes, and the modules that live module-level imports of that name load;
- a live def's own imports (and sglang module names spelled in its strings) make those modules
  live; a live module makes its packages live; a live module that imports by computed names
  (`import_module(f"{__name__}.{group}")`) makes live the modules of its package that any of
  its words name;
- a live class keeps its implicit members (dunders, properties, abstract or trivial interfaces,
  protocol methods torch calls) and the methods whose name ran in its class hierarchy (the
  protocol of a family in use: what another flag would call on a sibling); if any method of its
  own ran it also keeps the methods whose name is needed or live in any class (an override or an
  abstract declaration elsewhere). A class none of whose own methods ran was never put to work:
  it stays for the code that names it without its other methods;
- a class off the surface (under [[off_surface]])
  that defines `__init__` (or `__new__`) that never ran, and no subclass of which ran anything, was
  never instantiated: no object exists to call its methods on, so it keeps none of them (no dunders,
  protocol or family methods either), only its statement, bases and class-level assignments for the
  code that names it (`isinstance`, a dispatch table). Inside the surface a flag no scenario set may
  build it, so there it keeps its methods. Exceptions and declarative bodies (pydantic builds
  without `__init__`) are not judged this way; the methods of a dataclass, pydantic model or
  NamedTuple are plain methods (reach keeps them all);
- request handling ([[sampled]] paths outside wholly [[off_surface]] files) has no stubs, and its
  classes keep their methods though none ran: what runs there depends on each request;
- an HTTP route of a live app (`@app.post(...)`, `@router.get(...)`) is a root unless every route
  of its handler is removed by slim/surface.toml (then the front door answers it);
- a module none of whose defs ran in any recording (nor is kept by policy) implements a feature
  no scenario used: a function or method there that kept code names keeps its decorators and
  signature (a registration may read them), and its body becomes `raise NotImplementedError` (a
  stub), so what only that body named goes too. Compiled kernels (`@triton.jit`: launched, never
  run as Python), dunders, properties, abstract and trivial interface methods stay whole;
- under the policy's `[[off_surface]]` paths and symbols (features outside the supported
  surface) a def that never ran is stubbed the same way, even where an executed line names it
  (`a and can_cp_split(...)` short-circuits; a stub keeps the name for code that passes it
  around); elsewhere a branch no recording took may be another flag of the surface;
- (outside `[[off_surface]]`) a function or class that a function which ran calls on a line no
  recording executed (`IdleSleeper(...)` under `if sleep_on_idle:`), or that a module-level
  `register...("name", "module", "Class")` call that ran names, is flag-built: a launch flag inside
  the surface that no scenario set takes that branch. It is judged by name only (no stub, its class
  keeps the methods kept code names, the never-instantiated cut spares it), and so is what it calls
  in turn where none of that ran (functions and classes by name; methods through their kept class);
- a member read as `Cls.member` or `self.member` (the class's own, else its nearest ancestor's, by
  name) on such a line, anywhere in request handling, or by the members and flag-built defs so
  reached, stays if live code uses its name, whatever the untouched and never-instantiated cuts say
  (`EventPublisherFactory.create`): a stub off the surface, else whole, with what it calls and reads;
- the keep-policy's `[[whole]]` paths (code of matrix scenarios no host here could record: 2 GPUs)
  and whatever policy-kept code reaches are judged by name only: no stubs, and their classes keep
  their methods though no recording instantiated them;
- a class with no methods of its own (`class DeepseekV3ForCausalLM(DeepseekV2ForCausalLM): pass`,
  reached through a registry) lives with its base;
- a module kept code imports only for its side effect (`from .whisper import WhisperAdapter  #
  noqa: F401`, the bound name never used) stays with the defs it registers when the imported
  name is one of them (`@register_transcription_adapter("Whisper")`): a lookup may take any entry;
  so does every registration of a kept module under a `[[whole]]` path (`@register_fused_func`);
- a function a live module registers as an error handler (`@app.exception_handler(...)`) stays:
  no healthy run raises every error, but the error paths belong to the surface;
- a module no kept code imports (only a registry scan loaded it) whose runs are all its own
  import-time code (a function its body calls, a decorator it applies, a class it instantiates
  or subclasses) was loaded and never used: those runs keep nothing.
Everything else in a kept module goes, and so do imported modules nothing live reaches: the
ones only a registry scan loaded (every model file), or only dead imports named.
"""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import PurePosixPath

from slim.defs import Binding, Def, ModuleIndex, module_name
from slim.implicit import DUNDER
from slim.policy import Policy
from slim.reach_reasons import (  # noqa: F401 - re-exported: the reasons callers and tests compare
    CLASS_HOOKS,
    CONSTRUCTORS,
    ERROR_HANDLER,
    ERROR_HANDLER_DECORATORS,
    EXCEPTION_SUFFIXES,
    HIERARCHY,
    HOLDS_KEPT,
    NEVER_RUN,
    OFF_SURFACE_STUB,
    OVERRIDE,
    REFERENCED,
    REGISTERS,
    ROUTE,
    ROUTE_METHODS,
    SAME_NAME,
    STUB,
    STUBBABLE,
    Key,
    Liveness,
    _key,
    _positive,
    _registers,
    _routes,
)
from slim.reach_roots import _import_time_roots, _policy_reach, import_time_names  # noqa: F401 - re-exported
from slim.reach_rules import ReachRules
from slim.reasons import Reason, Why, policy_kept


class _Reach(ReachRules):
    def __init__(self, indexes: list[ModuleIndex], family_runs: dict[tuple[str, str], set[str]],
                 policy: Policy, policy_live: set[Key] | None = None,
                 executed: dict[str, set[int]] | None = None) -> None:
        # The rules that judge by what ran (never-instantiated classes, stubs, dataclass methods as
        # plain methods) leave alone policy_live: what policy-kept code may call.
        self.policy, self.policy_live = policy, policy_live or set()
        self.executed = executed or {}  # line-mode recordings: file -> lines some recording executed
        self.index = {i.path: i for i in indexes}
        self.by_module = {module_name(p): p for p in self.index}
        self.family_runs = family_runs
        self.top: dict[str, list[tuple[str, Def]]] = defaultdict(list)
        self.methods: dict[str, list[tuple[str, Def]]] = defaultdict(list)  # methods and nested classes
        self.members: dict[tuple[str, str], list[Def]] = defaultdict(list)
        self.bound: dict[str, list[tuple[str, Binding]]] = defaultdict(list)
        self.bare_classes: dict[str, list[tuple[str, Def]]] = defaultdict(list)  # base name -> classes
        self.defs: dict[tuple[str, str], Def] = {}
        for index in indexes:
            for d in index.defs:
                self.defs[(index.path, d.qualname)] = d
                if d.parent is None:
                    self.top[d.name].append((index.path, d))
                else:
                    self.members[(index.path, d.parent)].append(d)
                    self.methods[d.name].append((index.path, d))
            for b in index.bindings:
                self.bound[b.name].append((index.path, b))
        self.class_defs: dict[str, list] = defaultdict(list)  # class name -> [((file, qualname), def)]
        self.subclasses: dict[str, list[tuple[str, str]]] = defaultdict(list)  # base name -> classes
        for (path, qualname), d in self.defs.items():
            if d.kind != "class":
                continue
            self.class_defs[d.name].append(((path, qualname), d))
            bare = not any(m.kind == "method" for m in self.members[(path, qualname)])
            for base in (b.rsplit(".", 1)[-1] for b in d.bases):
                self.subclasses[base].append((path, qualname))
                if bare:
                    self.bare_classes[base].append((path, d))
        self.out = Liveness()
        self.live_methods: set[str] = set()
        self.live_classes: set[str] = set()
        self.todo: deque = deque()
        self.fixed: dict[Key, Reason] = {}  # ran / policy reasons, decided up front
        self.untouched, self.never_made = {}, {}  # per class: (path, qualname) -> bool
        self.ancestor_methods: dict[tuple[str, str], set[str]] = {}
        self.own_reads: dict[tuple[str, str], frozenset[str]] = {}
        self.loaded: set[str] = set()  # modules kept code (or policy, or __main__) imports
        self.ran_names: set[str] = set()  # top-level functions that ran (decorators among them)
        self.called: set[str] = set()  # names ran code calls, through never-run callees
        self.read: set[tuple[str, str]] = set()  # (class name, member) read there or on the request path
        self.registered: dict[str, list[Def]] = {}
        self.touched_files: set[str] = set()  # files with a def that ran or is kept by policy

    # -- marking --------------------------------------------------------------------------
    def need(self, names) -> None:
        for name in names:
            if name not in self.out.needed:
                self.out.needed.add(name)
                self.todo.append(("name", name))

    def module(self, path: str, reason: Reason) -> None:
        if reason.kind is not Why.HOLDS:
            self.loaded.add(path)  # reached by an import, a name in a string, the policy, __main__
        if path in self.out.modules or path not in self.index:
            return
        self.out.modules[path] = reason
        self.todo.append(("module", path))

    def module_named(self, name: str, reason: Reason) -> None:
        path = self.by_module.get(name)
        if path:
            self.module(path, reason)

    def binding(self, path: str, b: Binding) -> None:
        """A live import: the modules it loads, and the name it takes from them (`as` renames)."""
        for target in b.targets:
            self.module_named(target, Reason(Why.IMPORTED, path))
        if b.attr:
            self.need([b.attr])

    def define(self, path: str, d: Def, reason: Reason) -> None:
        key = _key(path, d)
        if key not in self.out.defs:
            self.out.defs[key] = reason
            self.todo.append(("def", path, d))

    # -- spreading ------------------------------------------------------------------------
    def _on_module(self, path: str) -> None:
        index = self.index[path]
        for parent in PurePosixPath(path).parents:
            init = f"{parent.as_posix()}/__init__.py"
            if init != path and init in self.index:
                self.module(init, Reason(Why.PACKAGE_OF, path))
        self.need(_positive(index.body_refs))
        for name in sorted(index.body_modules):
            self.module_named(name, Reason(Why.NAMED_IN, path))
        if index.computed_imports:  # `import_module(f"{__name__}.{group}")`: its words may be module names
            package = module_name(path) if path.endswith("__init__.py") else module_name(path).rpartition(".")[0]
            for name in sorted(index.refs):
                self.module_named(f"{package}.{name}", Reason(Why.COMPUTED_IMPORTS, path))
        for b in index.bindings:
            if b.name == "*" or b.name in self.out.needed:
                self.binding(path, b)
            else:  # `from .whisper import WhisperAdapter` (unused): imported for its registration
                for target in b.targets:
                    registered = self._registrations(self.by_module.get(target))
                    if any(d.name == (b.attr or b.name) for d in registered):
                        self.need([b.name])
                        for d in registered:
                            self.define(self.by_module[target], d, REGISTERS)
        if self.policy.whole_for(path) is not None:  # [[whole]]: a lookup by flag value may take any entry
            for d in self._registrations(path):
                self.define(path, d, REGISTERS)
        for d in index.defs:
            if d.parent is None and (d.name in self.out.needed or d.implicit == DUNDER):
                self.define(path, d, REFERENCED if d.name in self.out.needed else Reason(Why.IMPLICIT, DUNDER))
            elif d.parent is None and any(x.rsplit(".", 1)[-1] in ERROR_HANDLER_DECORATORS for x in d.decorators):
                self.define(path, d, ERROR_HANDLER)
            elif d.parent is None and any(_routes(x) for x in d.decorators) \
                    and (path, d.qualname) not in self.policy.refused_routes:  # refused at its front door
                self.define(path, d, ROUTE)
            elif d.parent is None and d.kind == "class" and any(
                    b.rsplit(".", 1)[-1] in self.live_classes for b in d.bases) and \
                    not any(m.kind == "method" for m in self.members[(path, d.qualname)]):
                self.define(path, d, self._bare_reason(d))

    def _registrations(self, path: str | None) -> list[Def]:
        """The top-level defs a module registers when imported: decorated by a function of the
        tree that ran (`@register_transcription_adapter("Whisper")`). Which entry a lookup takes
        is not recorded (the class may be instantiated without a method of its own running)."""
        if path is None or path not in self.index:
            return []
        if path not in self.registered:
            self.registered[path] = [d for d in self.index[path].defs if d.parent is None
                                     and any(_registers(x) and x.split(".")[0] in self.ran_names
                                             for x in d.decorators)]
        return self.registered[path]

    def _bare_reason(self, d: Def) -> Reason:
        base = next(b for b in d.bases if b.rsplit(".", 1)[-1] in self.live_classes)
        return Reason(Why.BARE_CLASS, base)

    def _on_def(self, path: str, d: Def) -> None:
        self.module(path, Reason(Why.HOLDS, d.qualname))
        if d.parent is not None:
            parent = self.defs[(path, d.parent)]
            if _key(path, parent) not in self.out.defs:
                self.define(path, parent, HOLDS_KEPT)
        if stub := self._stub(path, d):
            self.out.defs[_key(path, d)] = stub
            self.out.stubs.add(_key(path, d))
            self.need(_positive(d.header_refs))
            if d.parent is None:
                self.need([d.name])
            return
        self.need(_positive(d.own_refs))
        if d.parent is None:  # bindings of a live def's name elsewhere (registry entries) stay live too
            self.need([d.name])
        for name in sorted(d.imports):
            self.module_named(name, Reason(Why.IMPORTED, f"{path}::{d.qualname}"))
        if d.kind == "class":
            self.live_classes.add(d.name)
            for member in self.members[(path, d.qualname)]:
                reason = self._member_reason(path, member)
                if reason:
                    self.define(path, member, reason)
            for sub_path, sub in self.bare_classes.get(d.name, []):
                if sub_path in self.out.modules:
                    self.define(sub_path, sub, self._bare_reason(sub))
        elif d.kind == "method" and d.name not in self.live_methods:
            self.live_methods.add(d.name)
            for other_path, other in self.methods[d.name]:
                if other.kind == "method" and self._class_live(other_path, other):
                    reason = self._member_reason(other_path, other)
                    if reason:
                        self.define(other_path, other, reason)

    def _class_live(self, path: str, d: Def) -> bool:
        parent = self.defs.get((path, d.parent)) if d.parent else None
        return parent is not None and _key(path, parent) in self.out.defs

    def _on_name(self, name: str) -> None:
        for path, d in self.top.get(name, []):
            if path in self.out.modules:
                self.define(path, d, REFERENCED)
        for path, d in self.methods.get(name, []):
            reason = self._class_live(path, d) and self._member_reason(path, d)
            if reason:
                self.define(path, d, reason)
        for path, b in self.bound.get(name, []):
            if path in self.out.modules:
                self.binding(path, b)

    def run(self) -> Liveness:
        ran = [key for key, why in self.fixed.items() if why.kind is Why.RAN]
        self.ran_names = {key[1] for key in ran if "." not in key[1]}
        self.called, self.read = self._flag_reach(ran)
        while self.todo:
            event = self.todo.popleft()
            if event[0] == "name":
                self._on_name(event[1])
            elif event[0] == "module":
                self._on_module(event[1])
            else:
                self._on_def(event[1], event[2])
        return self.out


def reach(indexes: list[ModuleIndex], ran: dict[Key, list[str]], policy: Policy,
          family_runs: dict[tuple[str, str], set[str]], entry_modules: set[str],
          executed: dict[str, set[int]] | None = None) -> Liveness:
    """Live modules and defs, each with the reason it is kept (see the module docstring);
    `executed`: the lines line-mode recordings ran (file -> lines)."""
    policy_live = _policy_reach(indexes, policy, ran)
    ignored: set[Key] = set()
    while True:
        walker = _walk(indexes, ran, policy, family_runs, entry_modules, ignored, policy_live, executed)
        more = _import_time_roots(walker, ignored)
        if not more:
            return walker.out
        ignored |= more


def _walk(indexes, ran, policy, family_runs, entry_modules, ignored: set[Key], policy_live,
          executed=None) -> _Reach:
    walker = _Reach(indexes, family_runs, policy, policy_live, executed)
    for index in indexes:
        whole = policy.files.get(index.path)
        if whole:
            walker.module(index.path, policy_kept(whole.reason, whole.scenario))
        if index.path in entry_modules:
            walker.module(index.path, Reason(Why.RUN_AS_MAIN))
        for d in index.defs:
            key = _key(index.path, d)
            keep = whole or policy.keep_for(index.path, d.qualname)
            if key in ran and d.kind != "class" and key not in ignored:  # a class body runs on import
                walker.fixed[key] = Reason(Why.RAN, ", ".join(ran[key]))
            elif keep:
                walker.fixed[key] = policy_kept(keep.reason, keep.scenario)
            else:
                continue
            walker.touched_files.add(index.path)
            walker.define(index.path, d, walker.fixed[key])
    walker.run()
    return walker
