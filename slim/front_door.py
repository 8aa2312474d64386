"""Front doors: a removed feature is refused where the user names it, never reached deep inside.

`slim apply` writes one generated module into the slimmed tree (`FRONT_DOOR`) holding the removed
flags, flag values, request fields and routes with their messages (from slim/surface.toml), and
splices one call into each of six upstream functions where a user names them:
- `ServerArgs.add_cli_args` (the launch command's parser): a removed flag, or a removed value of a
  kept flag, is an argparse error (exit 2) that names the feature and how to get it back;
- the HTTP app, right after `app = FastAPI(...)`: a removed route answers 410 Gone with that message
  (a 4xx: the client named what this build refuses, no server fault; its handler is deleted by the
  plan, so the route is registered once);
- `TokenizerManager.generate_request` (every native and OpenAI generation passes it) and
  `OpenAIServingBase.handle_request`: a removed request field set by the client is an HTTP 400;
- `ModelConfig._verify_quantization`: a removed quantization the checkpoint declares (no flag
  named it) is a ValueError at start, before any weight loads.
- `ServerArgs.__post_init__` (the Python API: `sglang.Engine(**kwargs)`, `ServerArgs(...)` name flags
  as fields, past the parser): the same flags, values and environment switches, as a ValueError;
A removed entry point (`python -m sglang.x.y`) whose package is kept gets a module of its own in
its place: run, it exits with the message; imported, it raises ModuleNotFoundError (with the
message) as an absent module would, so an upstream `try: import ... except ImportError` holds.
"""

from __future__ import annotations

import ast
import pprint

from slim.env_switches import front_door_env
from slim.surface.policy import refusal_message

FRONT_DOOR = "sglang/srt/slim_front_door.py"
MODULE = "sglang.srt.slim_front_door"

# (file, function qualname, where, the statement spliced in, the name it imports)
HOOKS = (
    ("sglang/srt/server_args.py", "ServerArgs.add_cli_args", "end", "refuse_removed_args(parser)",
     "refuse_removed_args"),
    ("sglang/srt/server_args.py", "ServerArgs.__post_init__", "start", "refuse_removed_server_args(self)",
     "refuse_removed_server_args"),
    ("sglang/srt/entrypoints/http_server.py", "app", "after", "add_refused_routes(app)", "add_refused_routes"),
    ("sglang/srt/managers/tokenizer_manager.py", "TokenizerManager.generate_request", "start",
     "refuse_removed_fields(obj)", "refuse_removed_fields"),
    ("sglang/srt/entrypoints/openai/serving_base.py", "OpenAIServingBase.handle_request", "start",
     "if (refused := refused_fields(request)):\n    return self.create_error_response(refused)", "refused_fields"),
    ("sglang/srt/configs/model_config.py", "ModelConfig._verify_quantization", "end",
     "refuse_removed_quantization(self.quantization)", "refuse_removed_quantization"),
)

RUNTIME = '''

class _Refused(argparse.Action):
    """A removed flag: parsing it is an error that says how to get the feature back."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.nargs != 0 and values == self.default:  # its default named: no removed feature in use
            setattr(namespace, self.dest, values)
            return
        parser.error(f"{option_string}: {REMOVED_FLAGS[option_string]}")


def _refusing(flag, convert, default):
    def check(value):  # argparse converts a string default too: a removed default is no user's choice
        # Matched in any case, as an enum's parser reads it (`ngram` is NGRAM).
        if (message := _removed_value(flag, value)) is not None and value != default:
            raise argparse.ArgumentTypeError(message)
        return convert(value) if convert else value

    return check


def refuse_removed_args(parser):
    """Called at the end of ServerArgs.add_cli_args: refuse removed environment switches (set to
    anything but their default), flags and flag values."""
    if (refused := _refused_env()) is not None:
        parser.error("environment variable {}={}: {}".format(*refused))
    actions = parser._option_string_actions  # argparse keeps no public index of its actions
    for flag in sorted(REMOVED_FLAGS):
        if flag in actions:  # the same action, refusing: it keeps its dest, default and nargs
            actions[flag].__class__, actions[flag].help = _Refused, argparse.SUPPRESS
    for flag in sorted({flag for flag, _ in REMOVED_FLAG_VALUES}):
        action = actions.get(flag)
        if action is not None:
            if action.choices is not None:  # --help lists only what is left
                action.choices = [c for c in action.choices
                                  if (flag, c) not in REMOVED_FLAG_VALUES or c == action.default]
            action.type = _refusing(flag, action.type, action.default)


def _refused_env():
    """(name, value, message) of the first removed environment switch set to a non-default value."""
    for name, (default, message) in sorted(REMOVED_ENV.items()):
        value = os.environ.get(name)
        if value is not None and value.strip().lower() not in default:
            return name, value, message
    return None


def _flag_fields(parser):
    """Each launch flag's ServerArgs field (its argparse dest) and its parser default as written
    and as argparse converts it (a string default goes through the flag's type: '{}' -> {})."""
    return {flag: (action.dest, (action.default, _converted(action))) for flag, action in
            parser._option_string_actions.items()}


def _converted(action):
    if isinstance(action.default, str) and callable(action.type):
        try:
            return action.type(action.default)
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            pass
    return action.default


@functools.cache
def _launch_flag_fields():
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    return _flag_fields(parser)


@functools.cache
def _removed_values():
    """flag -> {removed value upper-cased: message}."""
    table = {}
    for (flag, value), message in REMOVED_FLAG_VALUES.items():
        table.setdefault(flag, {})[value.upper()] = message
    return table


def _spellings(value):
    """How a field's value may name a flag value: itself, an enum's name and value, upper-cased."""
    return {str(v).upper() for v in (value, getattr(value, "name", value), getattr(value, "value", value))}


def _removed_value(flag, value):
    """The message of the removed value of `flag` that `value` names in any spelling, or None: the
    one lookup of both doors (the launch parser's type check and ServerArgs.__post_init__)."""
    removed = _removed_values().get(flag, {})
    return next((removed[v] for v in sorted(_spellings(value)) if v in removed), None)


def _refusal(flag, value):
    """Why `value` may not reach the field through `flag`: the flag is removed, or this value of it."""
    return REMOVED_FLAGS.get(flag) or _removed_value(flag, value)


def refuse_removed_server_args(server_args, parser=None):
    """Called at the start of ServerArgs.__post_init__: the Python API names flags as fields, past
    the launch parser, so refuse here what the parser refuses, as a ValueError. A field left at a
    default (its flags', as written or converted, or its dataclass's) names nothing removed; one that
    a kept flag (a deprecated alias's successor) also writes is refused only if every flag writing
    it refuses the value. `parser`: one holding the launch flags (default: ServerArgs.add_cli_args')."""
    if (refused := _refused_env()) is not None:
        raise ValueError("environment variable {}={}: {}".format(*refused))
    flags = _flag_fields(parser) if parser is not None else _launch_flag_fields()
    own = _defaults(type(server_args)) if dataclasses.is_dataclass(server_args) else {}
    by_field = {}
    for flag, (dest, defaults) in sorted(flags.items()):
        by_field.setdefault(dest, []).append((flag, defaults))
    for dest, writers in by_field.items():
        defaults = [d for _, flag_defaults in writers for d in flag_defaults] + ([own[dest]] if dest in own else [])
        value = getattr(server_args, dest, defaults[0])
        if any(value == default for default in defaults):
            continue
        why = [_refusal(flag, value) for flag, _ in writers]
        if all(why):
            raise ValueError(f"{dest}={value!r} ({writers[0][0]}): {why[0]}")


@functools.cache
def _defaults(cls):
    """A dataclass's field defaults (a factory's value too), read once per class (not per field per request)."""
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            for f in dataclasses.fields(cls)}


def _named(obj, name):
    """The client set this field (pydantic: given in the body; a dataclass: not its default)."""
    given = getattr(obj, "model_fields_set", None)
    if given is not None:
        return name in given
    value = getattr(obj, name, None)
    default = _defaults(type(obj)).get(name)
    return value is not None and value != default and value != [] and value != {}


def refuse_removed_quantization(method):
    """Called at the end of ModelConfig._verify_quantization: a checkpoint's config may declare a
    removed quantization no flag named (compressed-tensors, w8a8_int8, ...); refuse it before loading."""
    for value in {str(method).lower(), str(method).lower().replace("_", "-")} if method else ():
        if ("--quantization", value) in REMOVED_FLAG_VALUES:
            raise ValueError(f"quantization {method!r}: {REMOVED_FLAG_VALUES[('--quantization', value)]}")


def refused_fields(obj):
    """The message for the first removed field the request sets, or None."""
    for name, message in REMOVED_FIELDS.get(type(obj).__name__, {}).items():
        if _named(obj, name):
            return f"{name}: {message}"
    return None


def refuse_removed_fields(obj):
    """Raise ValueError (HTTP 400 from the server's handlers) for a removed field the request sets."""
    if (message := refused_fields(obj)) is not None:
        raise ValueError(message)


def add_refused_routes(app):
    """Register the removed routes: each answers 410 Gone with what was removed and how to get it back."""
    from fastapi.responses import JSONResponse

    for (method, path), message in sorted(REMOVED_ROUTES.items()):
        async def refuse(message=message):
            return JSONResponse({"error": {"message": message, "type": "removed_by_slim", "code": 410}},
                                status_code=410)

        app.add_api_route(path, refuse, methods=[method], include_in_schema=False)
'''


def front_door_items(inventory: list[dict]) -> list[dict]:
    """The surface policy's removed items with their inventory kind (and a route's handler), sorted."""
    from slim.surface import removed_items

    by_id = {item["id"]: item for item in inventory}
    return [{**row, "kind": by_id[row["id"]]["kind"], "source": by_id[row["id"]].get("source")}
            for row in removed_items()]


def refused_handlers(items: list[dict], routes: list[dict]) -> set[tuple[str, str]]:
    """(file, qualname) of the route handlers all of whose routes are removed: no longer roots."""
    removed = {item["id"] for item in items}
    by_handler: dict[str, set[str]] = {}
    for route in routes:
        by_handler.setdefault(route["source"], set()).add(route["id"])
    return {tuple(source.split("::", 1)) for source, ids in by_handler.items() if ids <= removed}


def tables(removed: list[dict]) -> dict[str, dict]:
    """The four refusal tables from the surface policy's removed items (id, kind, message)."""
    flags, values, fields, routes = {}, {}, {}, {}
    for item in removed:
        kind, name, message = item["kind"], item["id"].split(":", 1)[1], item["message"]
        if kind == "flag":
            flags[name] = message
        elif kind == "flag_value":
            flag, _, value = name.partition("=")
            values[(flag, value)] = message
        elif kind == "field":
            model, _, field = name.partition(".")
            fields.setdefault(model, {})[field] = message
        elif kind == "route":
            method, _, path = name.partition(" ")
            routes[(method, path)] = message
    return {"REMOVED_FLAGS": flags, "REMOVED_FLAG_VALUES": values, "REMOVED_FIELDS": fields,
            "REMOVED_ROUTES": routes}


def module_source(removed: list[dict]) -> str:
    """The generated front-door module: data tables, then the refusal helpers."""
    head = ['"""Generated by `slim apply` (slim/front_door.py): features this slimmed SGLang removed, refused',
            'where a user names them. To get one back: record a scenario that uses it, then `slim apply`."""', "",
            "import argparse", "import dataclasses", "import functools", "import os", ""]
    env = {"REMOVED_ENV": front_door_env(refusal_message)}
    for name, table in (tables(removed) | env).items():
        head.append(f"{name} = {pprint.pformat(table, width=110, sort_dicts=True)}")
    return "\n".join(head) + RUNTIME


def _locate(tree: ast.Module, qualname: str) -> ast.stmt | None:
    body, found = tree.body, None
    for part in qualname.split("."):
        found = next((n for n in body if _defines(n, part)), None)
        if found is None:
            return None
        body = getattr(found, "body", [])
    return found


def hook(source: str, qualname: str, where: str, statement: str, name: str) -> str:
    """`source` with `statement` spliced at the start or end of function `qualname` (or after the
    module-level assignment `qualname`), and its import from the front-door module at the top of
    that function (or module): a function-local import keeps the module's own imports as upstream's."""
    lines = source.splitlines(keepends=True)
    node = _locate(ast.parse(source), qualname)
    if node is None:
        raise ValueError(f"front door: {qualname} not found")
    if where == "after":
        indent, at = "", node.end_lineno
        text = f"from {MODULE} import {name}\n{statement}\n"
    else:
        body = node.body
        anchor = body[1] if where == "start" and _docstring(node) and len(body) > 1 else body[0]
        indent = lines[anchor.lineno - 1][: anchor.col_offset]
        at = body[-1].end_lineno if where == "end" else anchor.lineno - 1
        text = "".join(f"{indent}{line}\n" for line in [f"from {MODULE} import {name}", *statement.splitlines()])
    return "".join(lines[:at]) + text + "".join(lines[at:])


def _defines(node: ast.stmt, name: str) -> bool:
    """A def or class of that name, or a module-level `name = ...`."""
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == name
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)


def _docstring(node) -> bool:
    first = node.body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


ENTRY_DOOR = '''"""Removed by slim: `python -m {module}` says how to get it back (slim/front_door.py)."""

MESSAGE = {message!r}

if __name__ == "__main__":
    raise SystemExit(f"{module}: {{MESSAGE}}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
'''
ENTRY_DOOR_MARK = ENTRY_DOOR.partition("{module}")[0].encode()  # how every door starts: it stands for an absent module


def entry_doors(removed: list[dict], kept: set[str]) -> dict[str, str]:
    """{path: text} for each removed entry-point module (or module a removed subcommand like
    `sglang generate` runs) whose package stays and whose file goes."""
    doors = {}
    for item in removed:
        path = item.get("source") or ""
        package = path.rsplit("/", 1)[0] + "/__init__.py"
        if item["kind"] in ("entry_point", "console_script") and path.endswith(".py") and path not in kept \
                and package in kept:
            module = item.get("module") or path.removesuffix(".py").replace("/", ".")
            doors[path] = ENTRY_DOOR.format(module=module, message=item["message"])
    return doors


def front_door_files(removed: list[dict], read, kept: set[str] = frozenset()) -> dict[str, str]:
    """Every file the front door writes or changes: {path: text}. `read(path)` gives a kept file's
    text; `kept` holds the paths of the kept files."""
    if not removed:
        return {}
    files = {FRONT_DOOR: module_source(removed)}
    for path, qualname, where, statement, name in HOOKS:
        files[path] = hook(files.get(path) or read(path), qualname, where, statement, name)
    return files | entry_doors(removed, kept)
