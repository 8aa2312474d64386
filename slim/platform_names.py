"""Platform probes provably False on NVIDIA (`is_hip()` & co., `_is_hip = is_hip()`), and the
pruning of the branches they decide, so names used only on HIP/NPU/CPU/XPU paths count as no use."""

from __future__ import annotations

import ast
import copy
from collections import Counter

from slim.module_names import resolve_relative
from slim.syntax import alias_binds

PLATFORM_HELPERS = frozenset({"is_hip", "is_npu", "is_cpu", "is_xpu", "is_musa", "is_hpu", "is_mps", "use_mlx"})
PLATFORM_MODULES = frozenset({"sglang.srt.utils", "sglang.srt.utils.common", "sglang.srt.utils.tensor_bridge"})


def _bindings(tree: ast.Module) -> Counter:
    """How often each name is bound anywhere in the file (assignments, args, defs, imports, global)."""
    bound: Counter = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound[node.id] += 1
        elif isinstance(node, ast.arg):
            bound[node.arg] += 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] += 1
        elif isinstance(node, ast.alias):
            bound[alias_binds(node)] += 1
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names * 2)  # rebound elsewhere: never fold
    return bound


# --- the platform test: one three-valued logic, for `ast` here and libcst in PlatformFolder ---
def probe_truth(name: str, called: bool, helpers: set[str], constants: set[str]) -> bool | None:
    """A probe is False on NVIDIA: a constant `_is_hip` read, or a helper `is_hip()` called with no
    arguments. Anything else: unknown (None)."""
    return False if name in (helpers if called else constants) else None


def negated(value: bool | None) -> bool | None:
    return None if value is None else not value


def combined(values: list[bool | None], is_and: bool) -> bool | None:
    """`and`/`or` over operands' truths: False absorbs `and`, True absorbs `or`; the other value
    is neutral, so the unknown operands decide (None) unless there are none."""
    absorbing = not is_and
    if absorbing in values:
        return absorbing
    return None if None in values else not absorbing


def truth(node: ast.expr, helpers: set[str], constants: set[str]) -> bool | None:
    """What a test is on NVIDIA: False/True when platform probes decide it, None otherwise."""
    if isinstance(node, ast.Name):
        return probe_truth(node.id, False, helpers, constants)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return None if node.args or node.keywords else probe_truth(node.func.id, True, helpers, constants)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return negated(truth(node.operand, helpers, constants))
    if isinstance(node, ast.BoolOp):
        return combined([truth(v, helpers, constants) for v in node.values], isinstance(node.op, ast.And))
    return None


class PlatformPruner(ast.NodeTransformer):
    """Drops the branches PlatformFolder will fold away, so names used only on HIP/NPU/CPU/XPU
    paths do not count as references that keep a def alive."""

    def __init__(self, helpers: set[str], constants: set[str]) -> None:
        self.helpers, self.constants = helpers, constants

    def visit_If(self, node: ast.If):
        self.generic_visit(node)
        value = truth(node.test, self.helpers, self.constants)
        return node if value is None else (node.body if value else node.orelse)

    def visit_IfExp(self, node: ast.IfExp):
        self.generic_visit(node)
        value = truth(node.test, self.helpers, self.constants)
        return node if value is None else (node.body if value else node.orelse)


def platform_names(tree: ast.Module, path: str) -> tuple[set[str], set[str]]:
    """(helpers, constants) provably False on NVIDIA: is_hip() & co. imported from sglang's utils,
    and module-level names assigned once from them (`_is_hip = is_hip()`)."""
    platform_imports = [stmt for stmt in tree.body if isinstance(stmt, ast.ImportFrom)
                        and resolve_relative(stmt.module, stmt.level, path) in PLATFORM_MODULES]
    imported = {alias.asname or alias.name for stmt in platform_imports for alias in stmt.names
                if alias.name in PLATFORM_HELPERS}
    defines = path.startswith("sglang/srt/utils/common")
    if not imported and not defines:
        return set(), set()  # nothing to fold: skip the walk over every binding in the file
    bound = _bindings(tree)
    helpers = {local for local in imported if bound[local] == 1}
    if defines:
        helpers |= {name for name in PLATFORM_HELPERS if bound[name] == 1}  # defined here
    # A parameter of the same name (`def f(is_npu: bool)`) shadows the helper only inside its
    # function: the helper is not folded, but module-level `_is_npu = is_npu()` still calls it.
    params = Counter(node.arg for node in ast.walk(tree) if isinstance(node, ast.arg))
    at_module = helpers | {local for local in imported if bound[local] - params[local] == 1}
    constants: set[str] = set()
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and bound[stmt.targets[0].id] == 1 and truth(stmt.value, at_module, constants) is False):
            constants.add(stmt.targets[0].id)
    return helpers, constants


def folded(rel: str, tree: ast.Module) -> ast.Module:
    """The file as NVIDIA runs it: the branches the platform folding drops, dropped (a copy; the
    tree itself when nothing folds)."""
    helpers, constants = platform_names(tree, rel)
    return PlatformPruner(helpers, constants).visit(copy.deepcopy(tree)) if helpers or constants else tree
