"""What line evidence could still cut: the kept statements of the committed plan, by who holds them,
and how many of them some line-mode recording executed (CPU only).

    .venv/bin/python benchmarks/line_evidence.py

Counts statement lines (a statement's first line, from upstream's AST), not source lines, because
that is what the tracer's line mode records. A statement belongs to the function or method the
plan decides on (nested functions count with their outer def); class bodies and module code are
"module level". Stubs are left out: their bodies are not written.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slim import upstream as up  # noqa: E402
from slim.paths import DB  # noqa: E402
from slim.plan import executed_lines, make_function_plan, package_files, run_functions  # noqa: E402
from slim.policy import load_policy  # noqa: E402
from slim.recording import load_all  # noqa: E402

MODULE_LEVEL = ""


def statement_owners(source: str) -> dict[int, str]:
    """First line of every statement -> qualname of the def the plan decides on ('' = module level)."""
    owners: dict[int, str] = {}

    def visit(body: list[ast.stmt], classes: str, owner: str) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                holder = owner or f"{classes}{node.name}"
                owners.setdefault(node.lineno, holder)  # the def line is written or not with its body
                visit(node.body, classes, holder)
                continue
            owners.setdefault(node.lineno, owner)
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{classes}{node.name}." if not owner else classes, owner)
            else:
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    children = getattr(node, field, [])
                    visit([c for c in children if isinstance(c, ast.stmt)], classes, owner)
                    for c in children:  # except handlers and match cases hold statements
                        if not isinstance(c, ast.stmt):
                            visit(c.body, classes, owner)

    visit(ast.parse(source).body, "", MODULE_LEVEL)
    return owners


def tally(owners: dict[int, str], executed: set[int], actions: dict[str, str], ran: set[str]) -> Counter:
    """(holder, executed?) -> statement lines, for one kept file."""
    counts: Counter = Counter()
    for line, owner in owners.items():
        if owner == MODULE_LEVEL:
            holder = "module and class level"
        elif actions.get(owner, "keep") != "keep":
            continue  # deleted, or a stub whose body is not written
        else:
            holder = "defs that ran" if owner in ran else "defs kept but never run"
        counts[holder, line in executed] += 1
    return counts


def main() -> None:
    tree = up.resolve_tree(None)
    recordings = load_all(DB, up.load_pin().version)
    plan = make_function_plan(tree, package_files(tree), recordings, load_policy())
    executed = executed_lines(recordings)
    ran: dict[str, set[str]] = {}
    for file, qualname, _ in run_functions(recordings):
        ran.setdefault(file, set()).add(qualname)
    actions: dict[str, dict[str, str]] = {}
    for d in plan.defs:
        actions.setdefault(d.file, {})[d.qualname] = d.action
    counts: Counter = Counter()
    for decision in plan.files:
        if decision.keep and decision.path.endswith(".py"):
            owners = statement_owners((tree / decision.path).read_text())
            counts += tally(owners, executed.get(decision.path, set()), actions.get(decision.path, {}),
                            ran.get(decision.path, set()))
    print("| kept statements held by | statement lines | executed | never executed |")
    print("|---|---:|---:|---:|")
    for holder in ("module and class level", "defs that ran", "defs kept but never run"):
        hit, miss = counts[holder, True], counts[holder, False]
        print(f"| {holder} | {hit + miss:,} | {hit:,} | {miss:,} |")
    hit, miss = sum(v for (_, e), v in counts.items() if e), sum(v for (_, e), v in counts.items() if not e)
    print(f"| **all kept** | {hit + miss:,} | {hit:,} | {miss:,} |")


if __name__ == "__main__":
    main()
