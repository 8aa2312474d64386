"""Drop module-level imports that only deleted or folded code used."""

from __future__ import annotations

import ast

import libcst as cst

from slim.defs import IDENT
from slim.module_names import import_targets
from slim.syntax import module_imports
from slim.transforms.base import ModuleLevelTransformer


def used_names(tree: ast.Module) -> set[str]:
    """Names a module reads (and words in its strings: __all__, string annotations)."""
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 2000:
            used.update(IDENT.findall(node.value))
    return used


def import_bindings(tree: ast.Module) -> list[tuple[str, str]]:
    """(bound name, module as written) for module-level imports, compound statements included."""
    return [(name, targets[0]) for stmt in module_imports(tree) for name, targets in import_targets(stmt, "")]


def newly_unused(before: ast.Module, after: ast.Module) -> set[str]:
    """Imported names that upstream used and the rewritten module no longer does. Only imports of
    third-party or stdlib modules: an sglang import can register things as a side effect, and an
    import upstream never used is a re-export we keep."""
    used_before, used_after = used_names(before), used_names(after)
    return {name for name, module in import_bindings(after)
            if name in used_before and name not in used_after and module != "__future__"
            and not module.startswith((".", "sglang"))}


class ImportPruner(ModuleLevelTransformer):
    """Remove the given bound names from module-level import statements."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def _bound(self, alias: cst.ImportAlias) -> str:
        if alias.asname:
            return alias.asname.name.value
        return cst.helpers.get_full_name_for_node(alias.name).split(".")[0]

    def _prune(self, node, names):
        kept = [a for a in names if self._bound(a) not in self.names]
        if len(kept) == len(names):
            return node
        if not kept:
            return cst.RemovalSentinel.REMOVE
        if not getattr(node, "lpar", None):  # no dangling comma without parentheses
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return node.with_changes(names=kept)

    def leave_Import(self, original_node, updated_node):
        return updated_node if self.depth else self._prune(updated_node, updated_node.names)

    def leave_ImportFrom(self, original_node, updated_node):
        if self.depth or isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        return self._prune(updated_node, updated_node.names)

    def leave_If(self, original_node, updated_node):
        """An `if TYPE_CHECKING:` / `if _is_cuda:` block whose imports all went goes too, rather
        than staying as `if ...: pass` (testing a name has no side effect to keep)."""
        emptied = isinstance(updated_node.body, cst.IndentedBlock) and not updated_node.body.body
        if self.depth or not emptied or updated_node.orelse is not None or not _plain_test(updated_node.test):
            return updated_node
        return cst.RemovalSentinel.REMOVE


def _plain_test(test: cst.BaseExpression) -> bool:
    return isinstance(test, cst.Name) or cst.helpers.get_full_name_for_node(test) == "typing.TYPE_CHECKING"
