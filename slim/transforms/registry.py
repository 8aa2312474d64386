"""Drop registry entries that name deleted classes or functions."""

from __future__ import annotations

import libcst as cst

from slim.transforms.base import ModuleLevelTransformer


class RegistryPruner(ModuleLevelTransformer):
    """`EntryClass = [A, B]`, `MODELS = {"a": A}`, `__all__ = ["A", "B"]` at module level: remove
    the elements naming `names`, as a name or a whole string (the plan lists dead names only)."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def _named(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.SimpleString):
            return node.evaluated_value in self.names
        return isinstance(node, cst.Name) and node.value in self.names

    def _prune(self, value: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(value, (cst.List, cst.Tuple, cst.Set, cst.Dict)) or not value.elements:
            return value
        kept = [e for e in value.elements if not self._named(getattr(e, "value", None))]
        if len(kept) == len(value.elements):
            return value
        if kept:  # the new last element ends the way the old last one did (comma or not)
            kept[-1] = kept[-1].with_changes(comma=value.elements[-1].comma)
        return value.with_changes(elements=kept)

    def leave_Assign(self, original_node, updated_node):
        return updated_node if self.depth else updated_node.with_changes(value=self._prune(updated_node.value))

    def leave_AnnAssign(self, original_node, updated_node):
        if self.depth or updated_node.value is None:
            return updated_node
        return updated_node.with_changes(value=self._prune(updated_node.value))
