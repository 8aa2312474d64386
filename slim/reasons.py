"""Why the plan keeps, stubs or removes a file, a module or a def: a Reason is a kind (Why) and a
detail (the recordings, the importer, the policy entry's words). Code decides by the kind; the
prose `slim plan --json` and REMOVED.md show is rendered from both (`str(reason)`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Why(Enum):
    """A reason's kind: (the template its detail fills, the group `slim plan`'s summary counts it in)."""

    # files (slim/plan_files.py)
    IMPORTED = ("imported by {}", "imported")  # detail: the recordings, or the kept importer
    IMPORTED_BY_POLICY_KEPT = ("imported by policy-kept {}", "kept by policy")  # detail: the importer
    LAZY_ON_REQUEST_PATH = ("imported lazily by request handling ({})", "imported")  # detail: the importer
    PACKAGE_INIT = ("package __init__ of kept modules", "package")
    DATA_KEPT = ("data file of a kept package", "data file")
    DATA_REMOVED = ("data file of a removed package", "data file")
    NEVER_IMPORTED = ("never imported in any recording", "never imported")
    UNREACHED = ("imported, but no code that ran reaches it", "unreached")
    # modules reach walks to (slim/reach.py): not in the plan's output, HOLDS is read
    PACKAGE_OF = ("package of {}", "package")
    NAMED_IN = ("named in {}", "named")
    COMPUTED_IMPORTS = ("{} imports modules by computed names", "named")
    RUN_AS_MAIN = ("run as __main__", "run")
    HOLDS = ("holds {}, which is kept", "holds")  # detail: the def's qualname; no import loads it
    # defs, files and modules alike
    POLICY_KEEP = ("kept by policy: {}", "kept by policy")  # detail: "<its reason> (scenario <name>)"
    # defs (slim/reach.py, slim/reach_rules.py, slim/plan_defs.py)
    RAN = ("run in {}", "run")  # detail: the recordings that ran it
    REFERENCED = ("referenced by kept code", "referenced by kept code")
    MEMBER_READ = ("read as Class.member or self.member on the request path or on a branch no recording took",
                   "referenced by kept code")
    HOLDS_KEPT = ("holds members that ran or are kept by policy", "holds members that ran or are kept by policy")
    IMPLICIT = ("implicit ({})", "implicit")  # detail: the indexer's (slim/defs.py): "dunder", "@property"
    SAME_NAME = ("implicit (a kept method elsewhere has this name)", "implicit")
    HIERARCHY = ("implicit (a method of this name ran in its class hierarchy)", "implicit")
    OVERRIDE = ("implicit (overrides a method of an ancestor: abstract implementations, backend probes)",
                "implicit")
    ERROR_HANDLER = ("implicit (registered error handler: the error paths of the surface)", "implicit")
    REGISTERS = ("implicit (registers itself when kept code imports its module for that side effect)",
                 "implicit")
    ROUTE = ("implicit (an HTTP route of a live app: the request surface)", "implicit")
    BARE_CLASS = ("implicit (no methods of its own: lives with its base {})", "implicit")  # detail: the base
    STUB = ("stub (named by kept code, never run, nothing in its module ran: the body raises)", "stub")
    OFF_SURFACE_STUB = ("stub (never run, and off the supported surface: policy [[off_surface]]; "
                        "the body raises)", "stub")
    NEVER_RUN = ("never run in any recording", "never run in any recording")
    IN_DELETED_CLASS = ("never run in any recording (its class is deleted)", "never run in any recording")

    def __init__(self, template: str, group: str) -> None:
        self.template, self.group = template, group

    @property
    def has_detail(self) -> bool:
        return "{}" in self.template


@dataclass(frozen=True)
class Reason:
    kind: Why
    detail: str = ""

    def __post_init__(self) -> None:  # a detail the prose would drop, or a hole left empty, is a bug
        if self.kind.has_detail != bool(self.detail):
            raise ValueError(f"{self.kind.name} {'needs' if self.kind.has_detail else 'takes no'} detail")

    def __str__(self) -> str:
        return self.kind.template.format(self.detail)


def policy_kept(reason: str, scenario: str) -> Reason:
    """A [[keep]] or [[whole]] entry's reason, as the plan has always written it."""
    return Reason(Why.POLICY_KEEP, f"{reason} (scenario {scenario})")
