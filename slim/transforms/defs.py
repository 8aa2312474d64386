"""Delete the defs the plan says never ran."""

from __future__ import annotations

import libcst as cst

from slim.transforms.base import QualnameTransformer


class DefRemover(QualnameTransformer):
    """actions: (qualname, occurrence) -> "delete". A deleted def goes with its decorators and
    leading comments."""

    def __init__(self, actions: dict[tuple[str, int], str]) -> None:
        super().__init__()
        self.actions = actions

    def on_def(self, key, node):
        if key and self.actions.get(key) == "delete":
            return cst.RemovalSentinel.REMOVE
        return node
