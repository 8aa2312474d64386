"""Why a definition stays whatever the recordings say: Python, a library or torch calls it by name
(dunders, properties, validators, protocol methods, overrides of standard-library methods), its
body is compiled rather than run (Triton, torch.compile), or it is a declaration (dataclass,
pydantic, Enum bodies). Each rule returns the reason as text, or None. Overrides of third-party
methods (torch.fx.Interpreter.call_module, flashinfer's CommBackend.Get_rank) are looked up in
slim/third_party_methods.json, which ci/third_party_bases.py reads from the GPU runtime's sources."""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
from pathlib import Path

from slim.syntax import dotted, module_statements

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
_THIRD_PARTY: dict[str, frozenset[str]] | None = None  # third_party_methods(), read once


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


def third_party_methods() -> dict[str, frozenset[str]]:
    """slim/third_party_methods.json (ci/third_party_bases.py): third-party base class -> the method names
    it and its ancestors define, read from the GPU runtime's sources (none of it imports here)."""
    global _THIRD_PARTY
    if _THIRD_PARTY is None:
        data = json.loads(THIRD_PARTY_FILE.read_text())
        _THIRD_PARTY = {base: frozenset(names) for base, names in data["methods"].items()}
    return _THIRD_PARTY


def library_names(tree: ast.Module, package: str = "") -> dict[str, str]:
    """Names the module's imports bind, anywhere in it (a base imported inside a function counts), as
    dotted names: {"CommBackend": "flashinfer.comm.mnnvl.CommBackend", "fx": "torch.fx"}; relative
    imports resolve against `package` and are skipped without one."""
    names: dict[str, str] = {}
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and (stmt.level == 0 or package):
            parts = package.split(".")[:len(package.split(".")) - stmt.level + 1] if stmt.level else []
            base = ".".join(parts + ([stmt.module] if stmt.module else []))
            names.update((a.asname or a.name, f"{base}.{a.name}") for a in stmt.names if a.name != "*")
    return names


def third_party_bases(node: ast.ClassDef, names: dict[str, str]) -> list[tuple[str, frozenset[str]]]:
    """(dotted name, method names) of the class's bases listed in slim/third_party_methods.json."""
    table, found = third_party_methods(), []
    for base in node.bases:
        head, _, rest = dotted(base).partition(".")
        full = names.get(head, "") + (f".{rest}" if rest else "")
        if full in table:
            found.append((full, table[full]))
    return found


def stdlib_names(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to the standard library: {"Filter": "logging.Filter", "logging": "logging"}."""
    names: dict[str, str] = {}
    for stmt in module_statements(tree.body):
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            names.update((a.asname or a.name, f"{stmt.module}.{a.name}") for a in stmt.names)
    return {k: v for k, v in names.items()
            if v.split(".")[0] in sys.stdlib_module_names and v.split(".")[0] not in STDLIB_SKIPPED}


def stdlib_bases(node: ast.ClassDef, names: dict[str, str]) -> list[tuple[str, type]]:
    """(dotted name, class) of the class's bases that are standard-library classes."""
    found = []
    for base in node.bases:
        written = dotted(base)
        head, _, rest = written.partition(".")
        if head not in names:
            continue
        full = names[head] + (f".{rest}" if rest else "")
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

