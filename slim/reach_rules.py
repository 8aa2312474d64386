"""The rules reach judges a member of a live class by, and the evidence they weigh (what ran, what
policy keeps, the class hierarchy). A mixin of `slim.reach._Reach`: it reads the walker's indexes
and what is live so far."""

from __future__ import annotations

from collections import defaultdict

from slim.defs import Def
from slim.reach_reasons import (
    CLASS_HOOKS,
    CONSTRUCTORS,
    EXCEPTION_SUFFIXES,
    HIERARCHY,
    MEMBER_READ,
    OFF_SURFACE_STUB,
    OVERRIDE,
    REFERENCED,
    SAME_NAME,
    STUB,
    STUBBABLE,
    Key,
    _declarative,
    _key,
)
from slim.reasons import Reason, Why


class ReachRules:
    def _member_reason(self, path: str, member: Def) -> Reason | None:
        """Why a member of a live class stays, strongest reason first; None: it goes (so far)."""
        key = _key(path, member)
        if key in self.fixed:
            return self.fixed[key]
        read = self._read_member(path, member)
        if member.kind == "method" and member.name not in CLASS_HOOKS and self._never_made(path, member.parent) \
                and not self._aliased(path, member):
            return MEMBER_READ if read else None
        if member.kind != "class" and (implicit := self._implicit(member)):
            return Reason(Why.IMPLICIT, implicit)
        if member.kind == "method" and member.name in self.family_runs.get((path, member.parent), ()):
            return HIERARCHY
        if member.kind == "method" and member.name in self._ancestor_methods(path, member.parent):
            return OVERRIDE
        if member.kind == "method" and self._untouched(path, member.parent) and not self._aliased(path, member) \
                and not _declarative(self.defs[(path, member.parent)]) \
                and not self.policy.on_request_path(path) \
                and self.policy.whole_for(path, member.parent) is None \
                and not self._flag_built(path, member):  # (a dataclass is built without a method of its own running)
            return MEMBER_READ if read or member.name in self._read_by_own_kept(path, member.parent) else None
        if member.name in self.out.needed:
            return REFERENCED
        if member.kind == "method" and member.name in self.live_methods:
            return SAME_NAME
        return None

    def _read_member(self, path: str, member: Def) -> bool:
        """Kept code reads the member as `Cls.member` or `self.member` on the request path or on a
        branch no recording took (`self.read`), and live code uses its name (so a reader the plan
        deletes keeps nothing)."""
        return (self.defs[(path, member.parent)].name, member.name) in self.read and member.name in self.out.needed

    def _aliased(self, path: str, member: Def) -> bool:
        """`alias = method` in its class body: the class statement itself uses the method."""
        return self.defs[(path, member.parent)].own_refs[member.name] > 0

    def _implicit(self, d: Def) -> str | None:
        """Why a def stays whatever ran (a dataclass body no longer says so: its methods are plain methods)."""
        return d.lean_implicit

    def _stub(self, path: str, d: Def) -> Reason | None:
        """Why the def is kept as a signature whose body raises; None: it is kept whole."""
        key = _key(path, d)
        if self.policy.on_request_path(path):  # a workload is no evidence a def there is unused; not even
            return None  # another feature's (`session.supports_swa()` is asked on every session request)
        if not (d.kind != "class" and self._implicit(d) is None and d.body_line > d.line
                and self.out.defs[key].kind in STUBBABLE and key not in self.policy_live
                and self.policy.whole_for(path, d.qualname) is None):
            return None
        # on the surface, a member so read is judged like flag-built code
        read_here = d.parent is not None and self.policy.off_surface_for(path, d.qualname) is None and (
            self._read_member(path, d) or d.name in self._read_by_own_kept(path, d.parent))
        if path not in self.touched_files and not self._flag_built(path, d) and not read_here:
            return STUB  # nothing in its module ran
        if key in self.fixed or self.policy.off_surface_for(path, d.qualname) is None:
            return None
        return OFF_SURFACE_STUB  # off the surface: the def never ran, whoever names it

    def _ancestor_methods(self, path: str, qualname: str) -> set[str]:
        """Method names the in-tree ancestors of a class define (bases matched by name); asked once
        per member of the class, walked once per class."""
        if (path, qualname) not in self.ancestor_methods:
            seen, todo, names = set(), list(self.defs[(path, qualname)].bases), set()
            while todo:
                base = todo.pop().rsplit(".", 1)[-1]
                if base in seen:
                    continue
                seen.add(base)
                for (other_path, other), d in self.class_defs.get(base, []):
                    names.update(m.name for m in self.members[(other_path, other)] if m.kind == "method")
                    todo.extend(d.bases)
            self.ancestor_methods[(path, qualname)] = names
        return self.ancestor_methods[(path, qualname)]

    def _untouched(self, path: str, qualname: str) -> bool:
        """A class with methods of its own none of which ran (nor is kept by policy) was never
        put to work: kept code may name it (isinstance, a dispatch table, a subclass), but its
        methods beyond the implicit ones and its family's protocol are not what a scenario calls."""
        if (path, qualname) not in self.untouched:
            own = [m for m in self.members[(path, qualname)] if m.kind == "method"]
            self.untouched[(path, qualname)] = bool(own) and not any(_key(path, m) in self.fixed for m in own)
        return self.untouched[(path, qualname)]

    def _read_by_own_kept(self, path: str, qualname: str) -> frozenset[str]:
        """Members of an untouched class that its methods which stay whatever ran (the implicit ones:
        its constructor, overrides of its family's protocol) read through `self`/`cls`, closed over
        the methods so read. When a flag puts the class to work they run: `FullComponent.__init__`
        takes `self._session_ref_eviction_strategy` (AttributeError at start-up under
        --enable-session-radix-cache, H100 2026-12-07)."""
        if (path, qualname) not in self.own_reads:
            own = {m.name: m for m in self.members[(path, qualname)] if m.kind == "method"}
            todo, read = [m for m in own.values() if self._implicit(m)], set()
            while todo:
                for _, ref in todo.pop().member_reads:
                    base, _, attr = ref.partition(".")
                    if base in ("self", "cls") and attr not in read:
                        read.add(attr)
                        todo += [own[attr]] if attr in own else []
            self.own_reads[(path, qualname)] = frozenset(read)
        return self.own_reads[(path, qualname)]

    def _never_made(self, path: str, qualname: str) -> bool:
        """The class is off the surface ([[off_surface]]), defines a constructor that never ran, is
        no exception or declarative body, and no class deriving from it (by base name, any depth) ran
        a method or is kept by policy. Only off the surface: inside it a flag no scenario set builds
        such a class (`--enable-return-routed-experts` builds BaseHostCache), and a class without
        its methods crashes there (TypeError at start-up, seen on GPU 2026-12-06)."""
        if (path, qualname) not in self.never_made:
            d = self.defs[(path, qualname)]
            own = self.members[(path, qualname)]
            self.never_made[(path, qualname)] = (
                _key(path, d) not in self.policy_live and self.policy.whole_for(path, qualname) is None
                and self.policy.off_surface_for(path, qualname) is not None
                and any(m.kind == "method" and m.name in CONSTRUCTORS for m in own)
                and self._untouched(path, qualname) and not _declarative(d)
                and not d.name.endswith(EXCEPTION_SUFFIXES)
                and not any(b.rsplit(".", 1)[-1].endswith(EXCEPTION_SUFFIXES) for b in d.bases)
                and not self._descendant_touched(d.name))
        return self.never_made[(path, qualname)]

    def _flag_built(self, path: str, d: Def) -> bool:
        """Outside [[off_surface]]: code that ran calls the def (or its class) on a branch
        no recording took, or through defs it so calls: a launch flag inside the surface takes it
        (`IdleSleeper(...)` under --sleep-on-idle), so it keeps its body and its class its methods."""
        name = self.defs[(path, d.parent)].name if d.kind == "method" else d.name
        return name in self.called and self.policy.off_surface_for(path, d.qualname) is None

    def _flag_reach(self, ran: list[Key]) -> tuple[set[str], set[tuple[str, str]]]:
        """What a launch flag inside the surface may take that no recording did, judged by name only:
        (functions and classes, (class name, member) pairs). Functions and classes: those that
        functions which ran call on lines no recording executed (the branch of a flag no scenario
        set), and registry entries named by string. Members: those read as `Cls.member` or
        `self.member` there, anywhere in request handling (what runs there depends on each
        request), or in code a [[keep]] keeps (it says that code may run:
        UnifiedRadixCache.init_hicache reads HybridCacheController.parse_storage_backend_extra_config).
        Both followed through everything the defs so found call and read where none of their code
        ran. Methods are not followed by name: a class called so keeps the methods kept code names,
        and a member read so stays."""
        executed = self.executed
        never_ran: dict[str, list[tuple[str, Def]]] = defaultdict(list)
        for (path, qualname), d in self.defs.items():
            if d.parent is None and self.policy.off_surface_for(path, qualname) is None and not (
                    _key(path, d) in self.fixed if d.kind == "function" else self._ran_inside(path, qualname)):
                never_ran[d.name].append((path, d))
        sources = [(path, d, executed.get(path, set())) for path, qualname, _ in ran
                   if (d := self.defs.get((path, qualname))) and d.kind != "class"]
        names = [name for path, d, lines in sources for line, name in d.calls if line not in lines]
        names += [word for path, index in self.index.items() for line, word in index.string_registrations
                  if line in executed.get(path, ())]  # a registry's entries by name: a flag picks one
        reads = [r for path, d, lines in sources for line, read in d.member_reads if line not in lines
                 if (r := self._read_of(path, d, read))]
        reads += [r for (path, _), d in self.defs.items() if d.kind != "class" and (
                      self.policy.on_request_path(path) or _key(path, d) in self.policy_live)
                  for _, read in d.member_reads if (r := self._read_of(path, d, read))]
        seen_names: set[str] = set()
        seen_reads: set[tuple[str, str]] = set()  # the reads followed
        members_read: set[tuple[str, str]] = set()  # the members they find
        while names or reads:
            found: list[tuple[str, Def]] = []
            if names:
                name = names.pop()
                if name not in seen_names and name in never_ran:
                    seen_names.add(name)
                    found = never_ran[name]
            elif (read := reads.pop()) not in seen_reads:
                seen_reads.add(read)
                for cls, members in self._read_targets(*read):
                    members_read.add((cls, read[1]))
                    found += [(path, m) for path, m in members if _key(path, m) not in self.fixed
                              and self.policy.off_surface_for(path, m.qualname) is None]  # a stub's body is gone
            for path, d in found:
                names += [name for _, name in d.calls]
                reads += [r for _, read in d.member_reads if (r := self._read_of(path, d, read))]
        return seen_names, members_read

    def _read_of(self, path: str, d: Def, read: str) -> tuple[str, str] | None:
        """(class name, member) that `Base.attr` read in `d` names: `self.`/`cls.` in a class (its
        methods) the enclosing class, a class name that class; None for anything else."""
        base, _, attr = read.partition(".")
        if base in ("self", "cls"):
            owner = d if d.kind == "class" else self.defs[(path, d.parent)] if d.parent else None
            return (owner.name, attr) if owner else None
        return (base, attr) if base in self.class_defs else None

    def _read_targets(self, cls: str, attr: str) -> list[tuple[str, list[tuple[str, Def]]]]:
        """The classes (by name) whose own member `attr` a read of `cls.attr` finds, with those
        members: the classes named `cls` that define it, else their nearest in-tree ancestors that do."""
        seen, todo, found = set(), [cls], []
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            classes = self.class_defs.get(name, [])
            members = [(path, m) for (path, qualname), _ in classes for m in self.members[(path, qualname)]
                       if m.name == attr]
            if members:
                found.append((name, members))
            else:
                todo += [b.rsplit(".", 1)[-1] for _, d in classes for b in d.bases]
        return found

    def _ran_inside(self, path: str, qualname: str) -> bool:
        """A member of the class (a method, a nested class) ran or is kept by policy."""
        return any(_key(path, m) in self.fixed for m in self.members[(path, qualname)])

    def _descendant_touched(self, name: str) -> bool:
        seen, todo = set(), [name]
        while todo:
            for path, qualname in self.subclasses.get(todo.pop(), []):
                if (path, qualname) in seen:
                    continue
                seen.add((path, qualname))
                if self._ran_inside(path, qualname):
                    return True
                todo.append(self.defs[(path, qualname)].name)
        return False
