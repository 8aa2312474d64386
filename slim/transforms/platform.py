"""Fold platform probes that are provably False on NVIDIA (is_hip() & co., `_is_hip`)."""

from __future__ import annotations

import libcst as cst

from slim.platform_names import combined, negated, probe_truth
from slim.transforms.base import filled

Folded = tuple[bool | None, cst.BaseExpression]  # (known truth value, simplified expression)


class PlatformFolder(cst.CSTTransformer):
    """`if _is_hip: A else: B` -> B; `if not _is_npu: X` -> X; `A if _is_hip else B` -> B;
    and/or/not simplified around them. Only `if` tests and conditional expressions are folded:
    assignments such as `_use_aiter = ... and _is_hip` are module code that ran and stay as they
    are (their names are folded where they are tested). Dropping the left operand of
    `f() and _is_hip` skips a call: upstream's operands there are env/platform reads."""

    def __init__(self, helpers: set[str], constants: set[str]) -> None:
        super().__init__()
        self.helpers, self.constants = helpers, constants
        self.elifs: set[int] = set()

    def truth(self, node: cst.BaseExpression) -> Folded:
        """slim.platform_names.truth on libcst, with the test left once the known operands go."""
        if isinstance(node, cst.Name):
            return probe_truth(node.value, False, self.helpers, self.constants), node
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name):
            return (None if node.args else probe_truth(node.func.value, True, self.helpers, self.constants)), node
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            value, inner = self.truth(node.expression)
            return negated(value), node.with_changes(expression=inner)
        if isinstance(node, cst.BooleanOperation):
            return self._boolean(node)
        return None, node

    def _boolean(self, node: cst.BooleanOperation) -> Folded:
        (lv, left), (rv, right) = self.truth(node.left), self.truth(node.right)
        value = combined([lv, rv], isinstance(node.operator, cst.And))
        if value is not None:
            return value, node  # decided: the test goes
        if lv is not None:  # the neutral element: the other side decides
            return None, _keep_parens(node, right)
        if rv is not None:
            return None, _keep_parens(node, left)
        return None, node.with_changes(left=left, right=right)

    # --- if / elif / else -------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> bool:
        if isinstance(node.orelse, cst.If):
            self.elifs.add(id(node.orelse))
        return True

    def leave_If(self, original_node, updated_node):
        if id(original_node) in self.elifs:
            return updated_node  # folded with its chain by the `if` that owns it
        folded = self._chain(updated_node)
        if isinstance(folded, cst.If):
            return folded
        return cst.FlattenSentinel(folded) if folded else cst.RemovalSentinel.REMOVE

    def _chain(self, node: cst.If) -> cst.If | list[cst.BaseStatement]:
        value, test = self.truth(node.test)
        if value is True:
            return _statements(node.body)
        rest: cst.If | list[cst.BaseStatement] | None = None
        if isinstance(node.orelse, cst.If):
            rest = self._chain(node.orelse)
        elif isinstance(node.orelse, cst.Else):
            rest = _statements(node.orelse.body)
        if value is False:
            if isinstance(rest, cst.If):
                return rest.with_changes(leading_lines=node.leading_lines)
            return rest or []
        orelse = rest if isinstance(rest, cst.If) else (cst.Else(filled(cst.IndentedBlock(rest))) if rest else None)
        return node.with_changes(test=test, orelse=orelse)

    def leave_IfExp(self, original_node, updated_node):
        value, test = self.truth(updated_node.test)
        if value is None:
            return updated_node.with_changes(test=test)
        return _keep_parens(updated_node, updated_node.body if value else updated_node.orelse)


def _statements(body: cst.BaseSuite) -> list[cst.BaseStatement]:
    if isinstance(body, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body.body)]
    return list(body.body)


def _keep_parens(outer: cst.BaseExpression, inner: cst.BaseExpression) -> cst.BaseExpression:
    """`(a and _is_hip) or b`: the surviving operand inherits the parentheses it lived in."""
    atom = isinstance(inner, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
    if outer.lpar and not inner.lpar and not atom:
        return inner.with_changes(lpar=outer.lpar, rpar=outer.rpar)
    return inner
