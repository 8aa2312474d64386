"""benchmarks/line_evidence.py: statements go to the def the plan decides on, then are tallied."""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "line_evidence", Path(__file__).resolve().parents[2] / "benchmarks" / "line_evidence.py")
line_evidence = sys.modules.setdefault("line_evidence", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(line_evidence)

SOURCE = '''import os
class A:
    x = 1
    def f(self):
        if os:
            return 1
        try:
            pass
        except ValueError:
            raise
    class B:
        def g(self):
            def inner():
                return 2
            return inner
def h():
    return 3
'''


def test_statements_belong_to_the_outer_def_and_classes_to_module_level():
    owners = line_evidence.statement_owners(SOURCE)
    assert [owners[n] for n in (1, 2, 3, 11)] == ["", "", "", ""]  # imports, class lines, class attributes
    assert [owners[n] for n in (4, 5, 6, 7, 8, 10)] == ["A.f"] * 6  # def line, if body, try body, handler body
    assert [owners[n] for n in (12, 13, 14, 15)] == ["A.B.g"] * 4  # a nested function counts with its outer def
    assert owners[16] == owners[17] == "h"


def test_tally_splits_by_holder_and_leaves_out_what_is_not_written():
    owners = line_evidence.statement_owners(SOURCE)
    counts = line_evidence.tally(owners, executed={1, 2, 3, 5, 6}, actions={"A.B.g": "stub", "h": "delete"},
                                 ran={"A.f"})
    assert counts["defs that ran", True] == 2 and counts["defs that ran", False] == 4
    assert counts["module and class level", True] == 3 and counts["module and class level", False] == 1
    assert not any(holder == "defs kept but never run" for holder, _ in counts)  # g is a stub, h deleted
