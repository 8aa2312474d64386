"""Delete or stub the defs the plan says never ran."""

from __future__ import annotations

import libcst as cst

from slim.transforms.base import QualnameTransformer

STUB_MESSAGE = "removed by slim: never run in any recording"


def stub_body() -> cst.IndentedBlock:
    raise_stmt = cst.Raise(cst.Call(cst.Name("NotImplementedError"), [cst.Arg(cst.SimpleString(f'"{STUB_MESSAGE}"'))]))
    return cst.IndentedBlock([cst.SimpleStatementLine([raise_stmt])])


class DefRemover(QualnameTransformer):
    """actions: (qualname, occurrence) -> "delete" | "stub". A deleted def goes with its
    decorators and leading comments; a stub keeps decorators and signature (every name kept code
    binds still exists, and registration decorators still run) and raises if ever called."""

    def __init__(self, actions: dict[tuple[str, int], str]) -> None:
        super().__init__()
        self.actions = actions

    def on_def(self, key, node):
        action = self.actions.get(key) if key else None
        if action == "delete":
            return cst.RemovalSentinel.REMOVE
        if action == "stub" and isinstance(node, cst.FunctionDef):
            return node.with_changes(body=stub_body())
        return node
