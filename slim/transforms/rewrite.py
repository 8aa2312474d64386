"""Rewrite one kept module: libcst on the smallest statements that change, spliced back.

Parsing a whole module with libcst costs ~0.15 ms a line (the kept tree: ~80 s of CPU on two
cores' worth), so `ast` (fast) locates what changes and libcst only sees small units:
- a deleted def is its own whole lines (a def always starts and ends a line), so it is cut by
  the line span ast gives (decorators included), with `tidy` (what `slim apply` writes) also the blank lines
  after it (no runs of blank lines left between survivors); a body left empty gets `pass`;
- a stubbed def keeps its decorator and signature lines; its body lines become one `raise`;
- platform folding, registry entries and unused imports: libcst on the innermost statement
  that holds them (descending through def/class/with/for bodies); an indented unit is parsed
  under an `if True:` line that is dropped again.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Callable

import libcst as cst

from slim.defs import first_line
from slim.syntax import alias_binds
from slim.transforms.base import FillEmptyBlocks
from slim.transforms.imports import ImportPruner, newly_unused
from slim.transforms.platform import PlatformFolder
from slim.transforms.registry import RegistryPruner

DefActions = dict[tuple[str, int], str]  # (qualname, co_firstlineno) -> "delete" | "stub"
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
WRAPPER = "if True:\n"


def _lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()  # \n, \r\n, \r: the line ends ast counts


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _parse_unit(snippet: str, indented: bool) -> cst.Module:
    return cst.parse_module(WRAPPER + snippet if indented else snippet)


def _unit_code(module: cst.Module, indented: bool) -> str:
    if not (module.body[0].body.body if indented else module.body):
        return ""  # everything in the unit went
    code = module.code
    return code[len(WRAPPER):] if indented else code


def _splice(lines: list[str], edits: list[tuple[int, int, str]]) -> str:
    """Replace 1-based inclusive line spans (disjoint) by new text."""
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1:end] = [new] if new else []
    return "".join(lines)


# --- defs ----------------------------------------------------------------------------------
def _def_edits(lines: list[str], tree: ast.Module, actions: DefActions, tidy: bool) -> list[tuple[int, int, str]]:
    edits: list[tuple[int, int, str]] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        gone = 0
        for node in body:
            if isinstance(node, DEFS):
                qualname = prefix + node.name
                action = actions.get((qualname, first_line(node)))
                if action == "delete":  # tidy: with the blank lines that separated it from what follows
                    end = node.end_lineno
                    while tidy and end < len(lines) and not lines[end].strip():
                        end += 1
                    edits.append((first_line(node), end, ""))
                    gone += 1
                    continue
                if action == "stub":  # decorators and signature stay; the body is replaced
                    edits.append((first_line(node.body[0]), node.end_lineno, _stub_body(node, qualname, lines)))
                    continue
                if isinstance(node, ast.ClassDef):
                    walk(node.body, qualname + ".")
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.AsyncWith, ast.AsyncFor)):
                for sub in (node.body, *[h.body for h in getattr(node, "handlers", [])],
                            node.orelse if hasattr(node, "orelse") else [], getattr(node, "finalbody", [])):
                    if sub:
                        walk(sub, prefix)
        if gone and gone == len(body):  # Python needs a statement: the last deleted def leaves `pass`
            start = edits[-1][0]  # the blank lines after it stay: they end the emptied block
            edits[-1] = (start, body[-1].end_lineno, _indent(lines[body[-1].lineno - 1]) + "pass\n")

    walk(tree.body, "")
    return edits


def _stub_body(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, lines: list[str]) -> str:
    """The body of a def that keeps its decorators and signature for the code that names it (a
    registration may read them); calling it says what happened."""
    # Words in strings count as uses of imported names: the message names nothing a module imports.
    message = f"slim removed the body of {qualname}: it never ran in any recording (see sglang/REMOVED.md)"
    # from the first statement's first decorator: a decorated nested def opens the body
    return f"{_indent(lines[first_line(node.body[0]) - 1])}raise NotImplementedError({message!r})\n"


# --- statement-level libcst transforms -----------------------------------------------------
def _unit_edits(lines: list[str], tree: ast.Module, wanted: Callable[[ast.stmt], bool],
                transforms: Callable[[bool], list[cst.CSTTransformer]]) -> list[tuple[int, int, str]]:
    """libcst over the innermost statements `wanted` selects."""
    edits = []

    def shares_lines(body: list[ast.stmt]) -> bool:
        return any(first_line(b) <= a.end_lineno for a, b in zip(body, body[1:], strict=False))

    def walk(body: list[ast.stmt]) -> None:
        gone = []  # units of this very body that vanished
        for node in body:
            if not wanted(node):
                continue
            inner = node.body if isinstance(node, (*DEFS, ast.With, ast.AsyncWith)) else None
            if inner and node.body[0].lineno > node.lineno and not shares_lines(inner) and \
                    not _header_wanted(node, wanted):
                walk(inner)
                continue
            indented = node.col_offset > 0
            start, end = first_line(node), node.end_lineno
            module = _parse_unit("".join(lines[start - 1:end]), indented)
            for transform in transforms(indented):
                module = module.visit(transform)
            code = _unit_code(module, indented)
            if code != "".join(lines[start - 1:end]):
                edits.append((start, end, code))
                if not code:
                    gone.append(len(edits) - 1)
        if body and len(gone) == len(body):  # the whole body went: Python needs a statement
            start, end, _ = edits[gone[-1]]
            edits[gone[-1]] = (start, end, _indent(lines[start - 1]) + "pass\n")

    if shares_lines(tree.body):
        wanted_all = any(wanted(s) for s in tree.body)
        if wanted_all:  # `a = 1; b = 2` at top level: the whole module in one unit
            module = cst.parse_module("".join(lines))
            for transform in transforms(False):
                module = module.visit(transform)
            return [(1, len(lines), module.code)] if lines else []
        return []
    walk(tree.body)
    return edits


def _header_wanted(node: ast.stmt, wanted) -> bool:
    """Does the part of a def/class/with outside its body need the transform?"""
    parts = [*getattr(node, "decorator_list", []), *getattr(node, "bases", []), *getattr(node, "items", [])]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        parts += [node.args] + ([node.returns] if node.returns else [])
    return any(wanted(ast.Expr(value=p) if isinstance(p, ast.expr) else p) for p in parts)


def _names_in(names: set[str]) -> Callable[[ast.AST], bool]:
    """Statements that use one of `names`, as a name or as a whole string (`__all__` entries)."""
    return lambda node: any((isinstance(n, ast.Name) and n.id in names) or
                            (isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names)
                            for n in ast.walk(node))


def _imports_in(names: set[str]) -> Callable[[ast.AST], bool]:
    def wanted(node: ast.AST) -> bool:
        return any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                   any(alias_binds(a) in names for a in n.names) for n in ast.walk(node))
    return wanted


def rewrite_module(source: bytes, actions: DefActions, helpers: set[str] = frozenset(),
                   constants: set[str] = frozenset(), registry: set[str] = frozenset(),
                   dead_imports: set[str] = frozenset(), tidy: bool = False) -> bytes:
    """The slimmed module: defs deleted, platform branches folded, registry entries
    dropped; then the imports only the removed code used, and the sglang imports the plan
    found dead (`dead_imports`: bound names)."""
    bom = source.startswith(b"\xef\xbb\xbf")
    text = source.decode("utf-8-sig")
    before = tree = ast.parse(text)
    if actions:
        text = _splice(_lines(text), _def_edits(_lines(text), tree, actions, tidy))
        tree = ast.parse(text)
    folded = set(helpers) | set(constants)
    if folded or registry:
        def transforms(wrapped: bool) -> list[cst.CSTTransformer]:
            return [RegistryPruner(set(registry)), PlatformFolder(set(helpers), set(constants)),
                    FillEmptyBlocks(wrapped)]
        text = _splice(_lines(text), _unit_edits(_lines(text), tree, _names_in(folded | set(registry)), transforms))
        tree = ast.parse(text)
    unused = newly_unused(before, tree) | set(dead_imports)
    for _ in range(2):  # a second round: an emptied `if TYPE_CHECKING:` leaves `TYPE_CHECKING` unused
        if not unused:
            break
        text = _splice(_lines(text), _unit_edits(_lines(text), tree, _imports_in(unused),
                                                 lambda wrapped, names=unused: [ImportPruner(names),
                                                                                FillEmptyBlocks(wrapped)]))
        tree = ast.parse(text)
        unused = newly_unused(before, tree)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()
