"""The serving surface of the pinned upstream, derived by reading its sources (never importing them):
HTTP routes, server flags and their values; request fields, sampling parameters and entry points come
from slim.surface.requests, the offline Engine's methods from slim.surface.python_api. Every item is a
dict with a stable `id` and a `kind`."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from slim.surface import python_api, requests
from slim.surface.pysrc import Source, Unresolved, class_attrs, keyword, literal, local_assignments, values_of

HTTP_SERVER = "sglang.srt.entrypoints.http_server"
SERVER_ARGS = "sglang.srt.server_args"
ONE_METHOD = {"get", "post", "put", "delete", "patch", "head", "options"}
ROUTER_METHODS = ONE_METHOD | {"api_route", "websocket"}


def derive_inventory(root: Path) -> dict:
    """The whole inventory of the upstream tree at `root`: items sorted by id, counts per kind, and what
    static reading could not resolve (named, never guessed)."""
    src = Source(root)
    routes, unresolved_paths = derive_routes(src)
    flags = derive_flags(src)
    items = routes + flags + requests.derive_fields(src, routes) + requests.derive_sampling_params(src) \
        + requests.derive_entry_points(src) + requests.derive_console_scripts(src) \
        + python_api.derive_engine_methods(src)
    ids = Counter(item["id"] for item in items)
    unique = {item["id"]: item for item in items if ids[item["id"]] == 1}
    for item in items:  # two declarations of one id (a re-registered route): the first is the one served
        unique.setdefault(item["id"], item)
    items = sorted(unique.values(), key=lambda item: item["id"])
    return {
        "items": items,
        "counts": dict(sorted(Counter(item["kind"] for item in items).items())),
        "unresolved": {
            "route_paths": unresolved_paths,
            "flag_choices": sorted(item["id"] for item in items if item.get("choices_unresolved")),
        },
    }


# --- routes -------------------------------------------------------------------------------------

def route_path(node: ast.AST) -> str | None:
    """A route's path: a string, or `os.environ.get(NAME, default)` (upstream's overridable paths)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "os.environ.get" and len(node.args) == 2:
        return route_path(node.args[1])
    return None


def route_methods(decorator: ast.Call, verb: str) -> list[str]:
    if verb == "websocket":
        return ["WEBSOCKET"]
    if verb in ONE_METHOD:
        return [verb.upper()]
    methods = keyword(decorator, "methods")
    return sorted(str(m).upper() for m in literal(methods)) if methods is not None else ["GET"]


def handler_models(src: Source, module: str, func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Request models a handler's parameters are annotated with (`obj: X` or `Annotated[X, Body()]`)."""
    models = []
    for arg in func.args.args:
        names = [n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)] if arg.annotation else []
        for name in names:
            if name in src.imports(module) and src.imports(module)[name][0] in requests.REQUEST_MODULES:
                models.append(name)
    return sorted(set(models))


def routes_in(src: Source, module: str, router: str) -> tuple[list[dict], list[str]]:
    """Routes declared in `module` by `@router.<verb>(path)` decorators and `router.add_api_route(...)`."""
    items, unresolved = [], []
    rel = src.rel(module)

    def add(path_node, methods, handler, line, models):
        path = route_path(path_node)
        if path is None:
            unresolved.append(f"{rel}:{line} {ast.unparse(path_node)}")
            return
        for method in methods:
            items.append({"id": f"route:{method} {path}", "kind": "route", "name": f"{method} {path}",
                          "method": method, "path": path, "handler": handler, "models": models,
                          "source": f"{rel}::{handler}", "line": line})

    for node in ast.walk(src.tree(module)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)
                        and ast.unparse(dec.func.value) == router and dec.func.attr in ROUTER_METHODS and dec.args):
                    add(dec.args[0], route_methods(dec, dec.func.attr), node.name, node.lineno,
                        handler_models(src, module, node))
        elif (isinstance(node, ast.Call) and ast.unparse(node.func) == f"{router}.add_api_route"
              and len(node.args) >= 2):
            add(node.args[0], route_methods(node, "api_route"), ast.unparse(node.args[1]), node.lineno, [])
    return items, sorted(set(unresolved))


def mounted_routes(src: Source, module: str) -> list[dict]:
    """`Mount("/path", ...)` apps that helpers called from `module` append to the app (e.g. /metrics)."""
    items = []
    for call in (n for n in ast.walk(src.tree(module)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)):
        found = src.lookup(module, call.func.id)
        if found is None or found[0] == module or not isinstance(found[1], ast.FunctionDef):
            continue
        for mount in ast.walk(found[1]):
            if (isinstance(mount, ast.Call) and isinstance(mount.func, ast.Name) and mount.func.id == "Mount"
                    and mount.args and (path := route_path(mount.args[0]))):
                items.append({"id": f"route:GET {path}", "kind": "route", "name": f"GET {path}", "method": "GET",
                              "path": path, "handler": found[1].name, "models": [],
                              "source": f"{src.rel(found[0])}::{found[1].name}", "line": mount.lineno})
    return items


def derive_routes(src: Source) -> tuple[list[dict], list[str]]:
    """Routes of the HTTP app, of the routers it includes and of the apps its helpers mount."""
    items, unresolved = routes_in(src, HTTP_SERVER, "app")
    for call in ast.walk(src.tree(HTTP_SERVER)):
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "app.include_router" and call.args:
            module, name = src.imports(HTTP_SERVER)[ast.unparse(call.args[0])]
            more, more_unresolved = routes_in(src, module, name)
            items, unresolved = items + more, unresolved + more_unresolved
    return items + mounted_routes(src, HTTP_SERVER), unresolved


# --- server flags --------------------------------------------------------------------------------

def unwrap_optional(node: ast.AST) -> ast.AST:
    """X from `Optional[X]`, `X | None` or `Union[X, None]`."""
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Optional":
        return node.slice
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and ast.unparse(node.right) == "None":
        return node.left
    if (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Union" and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 2 and ast.unparse(node.slice.elts[1]) == "None"):
        return node.slice.elts[0]
    return node


def json_value(value):
    """A flag default as JSON can hold it: literals as they are, anything else as its source text."""
    if isinstance(value, set | frozenset | tuple):
        value = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
    return value if isinstance(value, str | int | float | bool | list | type(None)) else repr(value)


def flag_item(src: Source, names: list[str], action: str, default, choices_node, line: int, qualname: str,
              local: dict | None = None, choices: list | None = None) -> list[dict]:
    """The flag's item and one `flag_value` item per choice (resolved statically, or marked unresolved)."""
    flag = {"id": f"flag:{names[0]}", "kind": "flag", "name": names[0], "aliases": names[1:], "action": action,
            "default": json_value(default), "source": f"{src.rel(SERVER_ARGS)}::{qualname}", "line": line}
    if choices is None and choices_node is not None:
        try:
            choices = values_of(src, SERVER_ARGS, choices_node, local)
        except Unresolved:
            flag.update(choices_unresolved=True, choices_source=ast.unparse(choices_node))
    values = [{"id": f"flag:{names[0]}={value}", "kind": "flag_value", "name": f"{names[0]}={value}",
               "flag": names[0], "value": str(value), "source": flag["source"], "line": line}
              for value in dict.fromkeys(choices or [])]
    return [flag] + values


# Flags whose values argparse does not check (no `choices`) but a parser after it does: the enum it
# parses them into (member names, upper-cased by its from_string) and the names a launch hook maps
# onto a member first (speculative_hook.py: NEXTN is EAGLE). Without these values the front door
# could not refuse an algorithm whose worker was cut.
ENUM_PARSED = {"speculative_algorithm": ("sglang.srt.speculative.spec_info", "SpeculativeAlgorithm", ["NEXTN"])}


def enum_values(src: Source, field: str) -> list[str] | None:
    """The values of an ENUM_PARSED flag: its enum's members but NONE, and its mapped names."""
    if field not in ENUM_PARSED:
        return None
    module, enum, mapped = ENUM_PARSED[field]
    cls = next(n for n in src.tree(module).body if isinstance(n, ast.ClassDef) and n.name == enum)
    return sorted([name for name in class_attrs(cls) if name != "NONE"] + mapped)


def dataclass_flags(src: Source, cls: ast.ClassDef) -> list[dict]:
    """Flags derived from `name: A[T, "help" | Arg(...)] = default` fields, as upstream's
    add_cli_args_from_dataclass derives them (bool -> store_true, Literal -> choices)."""
    items = []
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(stmt.annotation, ast.Subscript)
                and ast.unparse(stmt.annotation.value) in ("A", "Annotated")
                and isinstance(stmt.annotation.slice, ast.Tuple)):
            continue
        raw_type, *meta = stmt.annotation.slice.elts
        arg = next((m for m in meta if isinstance(m, ast.Call) and ast.unparse(m.func) == "Arg"), None)
        has_help = any(isinstance(m, ast.Constant | ast.JoinedStr | ast.BinOp) for m in meta)
        if arg is None and not has_help or arg is not None and literal(keyword(arg, "no_cli")) is True:
            continue
        field = stmt.target.id
        cli_name = literal(keyword(arg, "cli_name")) if arg is not None and keyword(arg, "cli_name") else None
        names = [cli_name or "--" + field.replace("_", "-")] + (literal(keyword(arg, "aliases")) or [] if arg else [])
        default = literal(stmt.value)
        if isinstance(stmt.value, ast.Call) and ast.unparse(stmt.value.func) in ("field", "dataclasses.field"):
            default = literal(keyword(stmt.value, "default")) if keyword(stmt.value, "default") else None
        inner = unwrap_optional(raw_type)
        choices_node = keyword(arg, "choices") if arg is not None else None
        is_literal = isinstance(inner, ast.Subscript) and ast.unparse(inner.value) == "Literal"
        if arg is not None and keyword(arg, "action") is not None:
            action = ast.unparse(keyword(arg, "action"))
        else:
            action = "store_true" if ast.unparse(inner) == "bool" and not is_literal else "store"
        if is_literal and choices_node is None:
            choices_node = inner.slice
        items += flag_item(src, names, action, default, choices_node, stmt.lineno, f"ServerArgs.{field}",
                           choices=None if choices_node is not None else enum_values(src, field))
    return items


def manual_flags(src: Source, func: ast.FunctionDef, field_defaults: dict[str, ast.AST]) -> list[dict]:
    """Flags registered by hand with `parser.add_argument("--x", ...)` in ServerArgs.add_cli_args."""
    local, items = local_assignments(func), []
    for call in ast.walk(func):
        if isinstance(call, ast.Call) and ast.unparse(call.func).endswith(".add_argument"):
            names = [a.value for a in call.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")]
            action = keyword(call, "action")
            default = keyword(call, "default")
            if isinstance(default, ast.Attribute) and ast.unparse(default.value) == "ServerArgs":
                default = field_defaults.get(default.attr, default)  # `default=ServerArgs.x`: the field's default
            items += flag_item(src, names, ast.unparse(action) if action is not None else "store",
                               literal(default) if default is not None else None, keyword(call, "choices"),
                               call.lineno, "ServerArgs.add_cli_args", local)
    return items


def derive_flags(src: Source) -> list[dict]:
    cls = src.top_level(SERVER_ARGS)["ServerArgs"]
    add_cli_args = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "add_cli_args")
    return dataclass_flags(src, cls) + manual_flags(src, add_cli_args, class_attrs(cls))
