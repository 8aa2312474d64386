"""Shared pieces: qualname tracking that mirrors slim.defs, and never-empty blocks."""

from __future__ import annotations

import libcst as cst


class QualnameTransformer(cst.CSTTransformer):
    """Tracks the qualname of defs outside function bodies, as slim.defs.collect_defs does, and
    numbers repeated qualnames (`if ...: def f` / `else: def f`) in source order."""

    def __init__(self) -> None:
        super().__init__()
        self.scope: list[str] = []  # enclosing class names
        self.in_function = 0
        self.seen: dict[str, int] = {}
        self.keys: list[tuple[str, int] | None] = []  # per open def: (qualname, occurrence)

    def _enter(self, name: str) -> None:
        if self.in_function:
            self.keys.append(None)
        else:
            qualname = ".".join([*self.scope, name])
            self.seen[qualname] = self.seen.get(qualname, -1) + 1
            self.keys.append((qualname, self.seen[qualname]))

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._enter(node.name.value)
        self.scope.append(node.name.value)
        return True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._enter(node.name.value)
        self.in_function += 1
        return True

    def leave_ClassDef(self, original_node, updated_node):
        self.scope.pop()
        return self.on_def(self.keys.pop(), updated_node)

    def leave_FunctionDef(self, original_node, updated_node):
        self.in_function -= 1
        return self.on_def(self.keys.pop(), updated_node)

    def on_def(self, key: tuple[str, int] | None, node):
        return node


def filled(body: cst.BaseSuite) -> cst.BaseSuite:
    """A block left with no statements gets `pass` (Python needs one)."""
    if isinstance(body, cst.IndentedBlock) and not body.body:
        return body.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
    return body


class FillEmptyBlocks(cst.CSTTransformer):
    """After statements were removed: no block may be empty. With `wrapped`, the outermost
    block is the `if True:` a unit was parsed under: left empty, so the unit can vanish."""

    def __init__(self, wrapped: bool = False) -> None:
        super().__init__()
        self.depth = -1 if wrapped else 0

    def visit_IndentedBlock(self, node) -> bool:
        self.depth += 1
        return True

    def leave_IndentedBlock(self, original_node, updated_node):
        self.depth -= 1
        return updated_node if self.depth < 0 else filled(updated_node)
