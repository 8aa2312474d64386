"""Why a definition stays whatever the recordings say: Python, a library or torch calls it by name
(dunders, properties, validators, protocol methods, overrides of standard-library methods), its
body is compiled rather than run (Triton, torch.compile), or it is a declaration (dataclass,
pydantic, Enum bodies). Each rule returns the reason as text, or None. Overrides of third-party
methods (torch.fx.Interpreter.call_module, flashinfer's CommBackend.Get_rank) are looked up in
slim/third_party_methods.json, which ci/third_party_bases.py reads from the GPU runtime's sources."""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from slim.module_names import resolve_relative
from slim.syntax import alias_binds, dotted, module_statements

# Decorators whose function body is compiled from source (Triton, TileLang, CuTe, torch.compile,
# numba): the Python code object never runs, so "never run" says nothing about them.
COMPILED_DECORATOR = re.compile(r"jit|compile|kernel|autotune|heuristics")
DUNDER = "dunder"  # the implicit reason of `__init__`, `__repr__`: Python calls them by name
IMPLICIT_DECORATORS = {"property", "cached_property", "abstractmethod", "overload", "setter",
                       "getter", "deleter", "validator", "field_validator", "model_validator",
                       "root_validator", "field_serializer", "model_serializer", "computed_field"}
# Methods torch / C code call by protocol rather than by name in Python source.
PROTOCOL_METHODS = {"forward", "extra_repr", "_load_from_state_dict", "_save_to_state_dict", "backward",
                    "setup_context", "jvp", "vjp", "symbolic", "_apply", "load_state_dict", "state_dict"}
# Class bodies that are declarations (fields, validators, members): instances are built by the
# library, not by a `__init__` of their own.
DECLARATIVE_BASES = {"BaseModel", "NamedTuple", "TypedDict", "Enum", "IntEnum", "StrEnum", "Flag", "IntFlag",
                     "Protocol", "Structure", "Union", "BaseSettings", "Struct"}
# Of those, the bodies whose methods the library itself calls by name (`_missing_`,
# `_generate_next_value_`, ctypes `_fields_` hooks, protocol members). The "lean" plan treats the
# methods of the others (dataclass, pydantic, NamedTuple, msgspec) as plain methods.
MACHINERY_BASES = {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "Protocol", "TypedDict", "Structure", "Union"}
# Deleting an override of a standard-library base's method (`logging.Filter.filter`,
# `pickle.Unpickler.find_class`) raises nothing: the library silently runs the base's own method
# instead. Such overrides are kept with their class. Only the standard library is looked into
# (always importable here); torch's protocol methods are PROTOCOL_METHODS.
STDLIB_SKIPPED = {"unittest"}  # test cases: their setUp/tearDown belong to test files, which go whole
THIRD_PARTY_FILE = Path(__file__).with_name("third_party_methods.json")


def is_trivial(body: list[ast.stmt]) -> bool:
    """Docstring / pass / ... / raise NotImplementedError only: an interface, nothing to save."""
    for stmt in body:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            continue
        if isinstance(stmt, ast.Raise) and "NotImplementedError" in dotted(stmt.exc or ast.Pass()):
            continue
        return False
    return True



def def_implicit(node, in_class: str | None, class_implicit: str | None) -> str | None:
    if class_implicit:
        return class_implicit
    name = node.name
    if name.startswith("__") and name.endswith("__"):
        return DUNDER
    decorators = [dotted(d) for d in node.decorator_list]
    for d in decorators:
        if d.rsplit(".", 1)[-1] in IMPLICIT_DECORATORS:
            return f"@{d}"
        if COMPILED_DECORATOR.search(d.lower()):
            return f"@{d}: compiled from source, never run as Python"
    if in_class and name in PROTOCOL_METHODS:
        return "called by torch"
    if not isinstance(node, ast.ClassDef) and is_trivial(node.body):
        return "interface: trivial body"
    return None


@functools.cache
def third_party_methods() -> dict[str, frozenset[str]]:
    """slim/third_party_methods.json (ci/third_party_bases.py): third-party base class -> the method names
    it and its ancestors define, read from the GPU runtime's sources (none of it imports here)."""
    data = json.loads(THIRD_PARTY_FILE.read_text())
    return {base: frozenset(names) for base, names in data["methods"].items()}


def import_bindings(statements: Iterable[ast.AST], path: str = "") -> dict[str, str]:
    """Names the import statements among `statements` bind, as dotted names: {"Filter":
    "logging.Filter", "fx": "torch.fx"}; relative imports resolve against file `path` (skipped without one)."""
    names: dict[str, str] = {}
    for stmt in statements:
        if isinstance(stmt, ast.Import):
            names.update((alias_binds(a), a.name if a.asname else alias_binds(a)) for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom) and (stmt.level == 0 or path):
            module = resolve_relative(stmt.module, stmt.level, path)
            names.update((a.asname or a.name, f"{module}.{a.name}") for a in stmt.names if a.name != "*")
    return names


def library_names(tree: ast.Module, path: str = "") -> dict[str, str]:
    """What the module's imports bind anywhere in it (a base imported inside a function counts)."""
    return import_bindings(ast.walk(tree), path)


def stdlib_names(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to the standard library: {"Filter": "logging.Filter", "logging": "logging"}."""
    return {k: v for k, v in import_bindings(module_statements(tree.body)).items()
            if v.split(".")[0] in sys.stdlib_module_names and v.split(".")[0] not in STDLIB_SKIPPED}


def base_name(base: ast.expr, names: dict[str, str]) -> str | None:
    """The dotted name a class base is written as, through the imports `names` holds; None if not imported."""
    head, _, rest = dotted(base).partition(".")
    return names[head] + (f".{rest}" if rest else "") if head in names else None


def third_party_bases(node: ast.ClassDef, names: dict[str, str]) -> list[tuple[str, frozenset[str]]]:
    """(dotted name, method names) of the class's bases listed in slim/third_party_methods.json."""
    table = third_party_methods()
    return [(full, table[full]) for base in node.bases if (full := base_name(base, names)) in table]


def stdlib_bases(node: ast.ClassDef, names: dict[str, str]) -> list[tuple[str, type]]:
    """(dotted name, class) of the class's bases that are standard-library classes."""
    found = []
    for base in node.bases:
        if (full := base_name(base, names)) is None:
            continue
        module, _, attr = full.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError):
            continue
        if isinstance(cls, type):
            found.append((full, cls))
    return found


def override_implicit(node, bases: list[tuple[str, type | frozenset[str]]]) -> str | None:
    """A standard-library base is a class (imported); a third-party one, its method names."""
    for full, cls in bases:
        defines = node.name in cls if isinstance(cls, frozenset) else hasattr(cls, node.name)
        if not isinstance(node, ast.ClassDef) and defines:
            return f"overrides {full}.{node.name}: the library calls it by name"
    return None


def class_body_implicit(node: ast.ClassDef) -> str | None:
    for d in node.decorator_list:
        if "dataclass" in dotted(d) or "define" in dotted(d):
            return "dataclass body"
    for base in node.bases:
        if dotted(base).rsplit(".", 1)[-1] in DECLARATIVE_BASES:
            return f"{dotted(base)} body"
    return None


def machinery_implicit(node: ast.ClassDef, own: str | None, enclosing: str | None) -> str | None:
    """The body reason that still holds under "lean" inside this class: its own when its library
    calls members by name, none when it is another declarative body, else its enclosing one."""
    if own is None:
        return enclosing
    return own if any(dotted(b).rsplit(".", 1)[-1] in MACHINERY_BASES for b in node.bases) else None

