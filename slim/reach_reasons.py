"""What reach decides and why: the reasons a def or module is kept (or goes), the Liveness it
returns, and the small predicates its rules share (slim/reach.py has the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slim.defs import Def
from slim.reasons import Reason, Why

# The reasons that need no detail (slim/reasons.py renders them; code compares their kinds).
NEVER_RUN = Reason(Why.NEVER_RUN)
REFERENCED = Reason(Why.REFERENCED)
MEMBER_READ = Reason(Why.MEMBER_READ)
HOLDS_KEPT = Reason(Why.HOLDS_KEPT)
SAME_NAME = Reason(Why.SAME_NAME)
HIERARCHY = Reason(Why.HIERARCHY)
OVERRIDE = Reason(Why.OVERRIDE)
ERROR_HANDLER = Reason(Why.ERROR_HANDLER)
REGISTERS = Reason(Why.REGISTERS)
STUB = Reason(Why.STUB)
OFF_SURFACE_STUB = Reason(Why.OFF_SURFACE_STUB)
ROUTE = Reason(Why.ROUTE)
# The reasons a def reach keeps may narrow to a stub (kept only because something names it).
STUBBABLE = {Why.REFERENCED, Why.MEMBER_READ, Why.SAME_NAME, Why.HIERARCHY, Why.OVERRIDE}
# Decorators that register a function as an error handler of a live app (FastAPI, Starlette).
ERROR_HANDLER_DECORATORS = {"exception_handler"}
# `@app.post("/generate")`, `@health_router.get(...)`: a route handler is a root of the surface
# whether or not a workload called it (nothing in the tree names it but its decorator).
ROUTE_METHODS = {"get", "post", "put", "delete", "patch", "api_route", "websocket"}
CONSTRUCTORS = {"__init__", "__new__"}
# Class-level hooks Python calls without an instance: they stay in a never-instantiated class.
CLASS_HOOKS = {"__init_subclass__", "__class_getitem__"}
EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt")

Key = tuple[str, str, int]  # (file, qualname, co_firstlineno)


@dataclass
class Liveness:
    modules: dict[str, Reason] = field(default_factory=dict)  # live module file -> why
    defs: dict[Key, Reason] = field(default_factory=dict)  # live def -> why
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
