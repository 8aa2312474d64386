"""Each reason kind renders as the prose the plan JSON and REMOVED.md have always shown (the
committed tree embeds that JSON: a changed word is a changed tree), and counts in its summary group."""

import json

import pytest

from slim.plan_types import DefDecision, FileDecision, Plan
from slim.reasons import Reason, Why, policy_kept

# kind -> (detail, the prose exactly as the plan wrote it before reasons were data, `slim plan`'s group)
PROSE = {
    Why.IMPORTED: ("r1, r2", "imported by r1, r2", "imported"),
    Why.IMPORTED_BY_POLICY_KEPT: ("sglang/a.py", "imported by policy-kept sglang/a.py", "kept by policy"),
    Why.LAZY_ON_REQUEST_PATH: ("sglang/a.py", "imported lazily by request handling (sglang/a.py)", "imported"),
    Why.PACKAGE_INIT: ("", "package __init__ of kept modules", "package"),
    Why.DATA_KEPT: ("", "data file of a kept package", "data file"),
    Why.DATA_REMOVED: ("", "data file of a removed package", "data file"),
    Why.NEVER_IMPORTED: ("", "never imported in any recording", "never imported"),
    Why.UNREACHED: ("", "imported, but no code that ran reaches it", "unreached"),
    Why.PACKAGE_OF: ("sglang/a/b.py", "package of sglang/a/b.py", "package"),
    Why.NAMED_IN: ("sglang/a.py", "named in sglang/a.py", "named"),
    Why.COMPUTED_IMPORTS: ("sglang/a.py", "sglang/a.py imports modules by computed names", "named"),
    Why.RUN_AS_MAIN: ("", "run as __main__", "run"),
    Why.HOLDS: ("A.f", "holds A.f, which is kept", "holds"),
    Why.POLICY_KEEP: ("ROCm (scenario rocm)", "kept by policy: ROCm (scenario rocm)", "kept by policy"),
    Why.RAN: ("r1, r2", "run in r1, r2", "run"),
    Why.REFERENCED: ("", "referenced by kept code", "referenced by kept code"),
    Why.MEMBER_READ: ("", "read as Class.member or self.member on the request path or on a branch no recording took",
                      "referenced by kept code"),
    Why.HOLDS_KEPT: ("", "holds members that ran or are kept by policy",
                     "holds members that ran or are kept by policy"),
    Why.IMPLICIT: ("@property", "implicit (@property)", "implicit"),
    Why.SAME_NAME: ("", "implicit (a kept method elsewhere has this name)", "implicit"),
    Why.HIERARCHY: ("", "implicit (a method of this name ran in its class hierarchy)", "implicit"),
    Why.OVERRIDE: ("", "implicit (overrides a method of an ancestor: abstract implementations, backend probes)",
                   "implicit"),
    Why.ERROR_HANDLER: ("", "implicit (registered error handler: the error paths of the surface)", "implicit"),
    Why.REGISTERS: ("", "implicit (registers itself when kept code imports its module for that side effect)",
                    "implicit"),
    Why.ROUTE: ("", "implicit (an HTTP route of a live app: the request surface)", "implicit"),
    Why.BARE_CLASS: ("nn.Module", "implicit (no methods of its own: lives with its base nn.Module)", "implicit"),
    Why.STUB: ("", "stub (named by kept code, never run, nothing in its module ran: the body raises)", "stub"),
    Why.OFF_SURFACE_STUB: ("", "stub (never run, and off the supported surface: policy [[off_surface]]; "
                               "the body raises)", "stub"),
    Why.NEVER_RUN: ("", "never run in any recording", "never run in any recording"),
    Why.IN_DELETED_CLASS: ("", "never run in any recording (its class is deleted)", "never run in any recording"),
}


def test_every_kind_has_its_prose_pinned():
    assert set(PROSE) == set(Why)


@pytest.mark.parametrize("kind", list(Why), ids=lambda kind: kind.name)
def test_a_kind_renders_its_prose_and_counts_in_its_group(kind):
    detail, prose, group = PROSE[kind]
    assert str(Reason(kind, detail)) == prose
    assert kind.group == group


@pytest.mark.parametrize("kind", list(Why), ids=lambda kind: kind.name)
def test_a_detail_fills_a_hole_or_there_is_none(kind):
    """A detail the prose would drop, or a hole left empty, is refused when the reason is made."""
    with pytest.raises(ValueError):
        Reason(kind, "" if kind.has_detail else "dropped")


def test_a_policy_entry_reads_as_its_reason_and_scenario():
    assert policy_kept("DSA path", "dsv32") == Reason(Why.POLICY_KEEP, "DSA path (scenario dsv32)")


def test_the_plan_json_writes_the_prose_and_no_kind():
    plan = Plan(["r"], [FileDecision("sglang/a.py", True, Reason(Why.IMPORTED, "r"))],
                [DefDecision("sglang/a.py", "f", 1, "function", "keep", Reason(Why.RAN, "r"), 2)])
    data = json.loads(plan.to_json())
    assert data["files"] == [{"path": "sglang/a.py", "keep": True, "reason": "imported by r"}]
    assert data["defs"] == [{"file": "sglang/a.py", "qualname": "f", "line": 1, "kind": "function", "action": "keep",
                             "reason": "run in r", "lines": 2, "policy_entry": None}]
