"""What reach decides and why: the reasons a def or module is kept (or goes), the Liveness it
returns, and the small predicates its rules share (slim/reach.py has the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slim.defs import Def

NEVER_RUN = "never run in any recording"
RAN = "run in "  # the reason of a def some recording ran: "run in <scenarios>"
REFERENCED = "referenced by kept code"
HOLDS_KEPT = "holds members that ran or are kept by policy"
SAME_NAME = "implicit (a kept method elsewhere has this name)"
HIERARCHY = "implicit (a method of this name ran in its class hierarchy)"
OVERRIDE = "implicit (overrides a method of an ancestor: abstract implementations, backend probes)"
ERROR_HANDLER = "implicit (registered error handler: the error paths of the surface)"
REGISTERS = "implicit (registers itself when kept code imports its module for that side effect)"
STUB = "stub (named by kept code, never run, nothing in its module ran: the body raises)"
OFF_SURFACE_STUB = "stub (never run, and off the supported surface: policy [[off_surface]]; the body raises)"
STUBBABLE = (REFERENCED, SAME_NAME, HIERARCHY, OVERRIDE)
# Decorators that register a function as an error handler of a live app (FastAPI, Starlette).
ERROR_HANDLER_DECORATORS = {"exception_handler"}
ROUTE = "implicit (an HTTP route of a live app: the request surface)"
# `@app.post("/generate")`, `@health_router.get(...)`: a route handler is a root of the surface
# whether or not a workload called it (nothing in the tree names it but its decorator).
ROUTE_METHODS = {"get", "post", "put", "delete", "patch", "api_route", "websocket"}
CONSTRUCTORS = {"__init__", "__new__"}
# Class-level hooks Python calls without an instance: they stay in a never-instantiated class.
CLASS_HOOKS = {"__init_subclass__", "__class_getitem__"}
EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt")

Key = tuple[str, str, int]  # (file, qualname, co_firstlineno)
HOLDS = "holds "  # the start of the reason of a module kept only because a def in it is


@dataclass
class Liveness:
    modules: dict[str, str] = field(default_factory=dict)  # live module file -> why
    defs: dict[Key, str] = field(default_factory=dict)  # live def -> why
    needed: set[str] = field(default_factory=set)  # every name live code uses
    stubs: set[Key] = field(default_factory=set)  # live defs kept as a signature whose body raises


def _key(path: str, d: Def) -> Key:
    return (path, d.qualname, d.line)


def _registers(decorator: str) -> bool:
    """`@register_x(...)`: upstream's registration decorators say so in their name (a caching or
    debugging wrapper like `@cache_once` does not make its module's import matter)."""
    return decorator.split(".")[0].startswith("register")


def _routes(decorator: str) -> bool:
    """`app.post`, `router.get`, `health_router.get`: FastAPI's route registration on an app or router."""
    owner, _, method = decorator.rpartition(".")
    return method in ROUTE_METHODS and (owner == "app" or owner.endswith("router"))


def _declarative(d: Def) -> bool:
    """A dataclass or a pydantic/enum/... body (or inside one): built without an `__init__` of its own."""
    return d.implicit is not None or d.declarative


def _positive(refs) -> list[str]:
    return [name for name, count in refs.items() if count > 0]
