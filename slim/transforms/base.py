"""Shared pieces: module-level tracking and never-empty blocks."""

from __future__ import annotations

import libcst as cst


class ModuleLevelTransformer(cst.CSTTransformer):
    """Knows whether it is outside every def and class body (`self.depth == 0`): the pruners
    only touch module-level statements."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def visit_FunctionDef(self, node) -> bool:
        self.depth += 1
        return True

    def leave_FunctionDef(self, original_node, updated_node):
        self.depth -= 1
        return updated_node

    visit_ClassDef = visit_FunctionDef
    leave_ClassDef = leave_FunctionDef


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
