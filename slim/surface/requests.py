"""Request-side surface items: the fields of the request models that routes parse (and the models nested
in them), SamplingParams' API fields, modules runnable with `python -m`, and the wheel's console scripts
with their subcommands."""

from __future__ import annotations

import ast
import configparser

from slim.surface.pysrc import Source

# Module of a request model -> the API it belongs to.
REQUEST_MODULES = {
    "sglang.srt.managers.io_struct": "native",
    "sglang.srt.entrypoints.openai.protocol": "openai",
    "sglang.srt.entrypoints.anthropic.protocol": "anthropic",
    "sglang.srt.entrypoints.ollama.protocol": "ollama",
}
HTTP_SERVER = "sglang.srt.entrypoints.http_server"
SAMPLING = "sglang.srt.sampling.sampling_params"
INTERNAL_MARKER = "# --- Internal fields"  # SamplingParams: what follows is filled in by normalize(), not callers
NO_ENTRY_FOLDERS = ("sglang/multimodal_gen/",)


def declared_fields(cls: ast.ClassDef) -> list[ast.AnnAssign]:
    """`name: T [= default]` statements of a class body, less ClassVars and private attributes."""
    return [stmt for stmt in cls.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and not stmt.target.id.startswith("_") and "ClassVar" not in ast.unparse(stmt.annotation)]


def model_classes(src: Source, module: str, node: ast.AST,
                  seen: set[tuple[str, str]] | None = None) -> list[tuple[str, ast.ClassDef]]:
    """Request-module classes an annotation names, through module-level aliases (`X = Union[A, B]`)."""
    seen = set() if seen is None else seen
    found = []
    for name in (n.id for n in ast.walk(node) if isinstance(n, ast.Name)):
        where = src.lookup(module, name)
        if where is None or where[0] not in REQUEST_MODULES or (where[0], name) in seen:
            continue
        seen.add((where[0], name))
        if isinstance(where[1], ast.ClassDef):
            found.append(where)
        else:
            found += model_classes(src, where[0], where[1], seen)
    return found


def class_fields(src: Source, module: str, cls: ast.ClassDef) -> list[tuple[str, ast.AnnAssign]]:
    """(declaring class, field) for a model's fields, those of request-module base classes first."""
    fields = []
    for base_module, base in model_classes(src, module, ast.Tuple(elts=cls.bases)):
        fields += class_fields(src, base_module, base)
    fields += [(cls.name, stmt) for stmt in declared_fields(cls)]
    return fields


def derive_fields(src: Source, routes: list[dict]) -> list[dict]:
    """One item per field of every request model a route parses, and of the request models nested in them."""
    routes_of: dict[tuple[str, str], set[str]] = {}
    pending = []
    for route in routes:
        for module, cls in model_classes(src, HTTP_SERVER, ast.Tuple(elts=[ast.Name(id=m) for m in route["models"]])):
            routes_of.setdefault((module, cls.name), set()).add(route["id"])
            pending.append((module, cls, (module, cls.name)))
    items, done = [], set()
    while pending:
        module, cls, root = pending.pop()
        key = (module, cls.name)
        routes_of.setdefault(key, set()).update(routes_of[root])
        if key in done:
            continue
        done.add(key)
        for owner, stmt in class_fields(src, module, cls):
            nested = model_classes(src, module, stmt.annotation)
            items.append({
                "id": f"field:{cls.name}.{stmt.target.id}", "kind": "field", "name": stmt.target.id,
                "api": REQUEST_MODULES[module], "model": cls.name, "declared_in": owner,
                "type": ast.unparse(stmt.annotation), "default": ast.unparse(stmt.value) if stmt.value else None,
                "nests": sorted({c.name for _, c in nested}),
                "source": f"{src.rel(module)}::{cls.name}", "line": stmt.lineno,
            })
            pending += [(m, c, root) for m, c in nested]
    for item in items:
        module = next(m for m, api in REQUEST_MODULES.items() if api == item["api"])
        item["routes"] = sorted(routes_of.get((module, item["model"]), ()))
    return items


def derive_sampling_params(src: Source) -> list[dict]:
    """SamplingParams' fields that callers set (those above upstream's internal-fields marker)."""
    cls = src.top_level(SAMPLING)["SamplingParams"]
    lines = src.path(SAMPLING).read_text(encoding="utf-8").splitlines()
    end = next((i + 1 for i, text in enumerate(lines) if text.strip().startswith(INTERNAL_MARKER)), len(lines) + 1)
    return [{"id": f"sampling:{stmt.target.id}", "kind": "sampling_param", "name": stmt.target.id,
             "type": ast.unparse(stmt.annotation), "default": ast.unparse(stmt.value) if stmt.value else None,
             "source": f"{src.rel(SAMPLING)}::SamplingParams", "line": stmt.lineno}
            for stmt in declared_fields(cls) if stmt.lineno < end]


def is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and {ast.unparse(node.test.left), ast.unparse(node.test.comparators[0])} == {"__name__", "'__main__'"})


def derive_entry_points(src: Source) -> list[dict]:
    """Modules with an `if __name__ == "__main__":` block (the diffusion runtime aside): upstream's
    sglang/test included, whose operator tools (send_one, run_eval, ...) run against a live server."""
    items = []
    for path in sorted((src.root / "sglang").rglob("*.py")):
        rel = path.relative_to(src.root).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if rel.startswith(NO_ENTRY_FOLDERS) or "__main__" not in text:
            continue
        guard = next((n for n in ast.parse(text).body if is_main_guard(n)), None)
        if guard is not None:
            module = rel.removesuffix(".py").removesuffix("/__main__").removesuffix("/__init__").replace("/", ".")
            items.append({"id": f"entry:{module}", "kind": "entry_point", "name": module, "module": module,
                          "source": rel, "line": guard.lineno})
    return items


def derive_console_scripts(src: Source) -> list[dict]:
    """The `[console_scripts]` of the wheel's entry_points.txt, with their subcommands."""
    root, items = src.root, []
    for path in sorted(root.glob("*.dist-info/entry_points.txt")):
        parser = configparser.ConfigParser()
        parser.read(path, encoding="utf-8")
        for name, target in sorted(parser.items("console_scripts") if parser.has_section("console_scripts") else []):
            items.append({"id": f"script:{name}", "kind": "console_script", "name": name, "target": target,
                          "source": path.relative_to(root).as_posix(), "line": None})
            items += derive_subcommands(src, name, target.split(":")[0])
    return items


def derive_subcommands(src: Source, script: str, module: str) -> list[dict]:
    """`sglang serve`, `sglang generate`, ...: each `add_parser("name")` of the script's module, with
    the module its `if args.subcommand == "name":` branch imports (where a removed one is refused)."""
    tree = src.tree(module)
    if tree is None:
        return []
    names = {node.args[0].value: node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "add_parser" and node.args and isinstance(node.args[0], ast.Constant)}
    items = []
    for name, line in sorted(names.items()):
        target = branch_import(tree, name) or module
        items.append({"id": f"script:{script} {name}", "kind": "console_script", "name": f"{script} {name}",
                      "target": target, "source": src.rel(target), "line": line})
    return items


def branch_import(tree: ast.Module, subcommand: str) -> str | None:
    """The sglang module imported first under `if <x>.subcommand == "<subcommand>":`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) \
                and ast.unparse(node.test.comparators[0]) == repr(subcommand) \
                and ast.unparse(node.test.left).endswith(".subcommand"):
            return next((stmt.module for stmt in node.body
                         if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("sglang.")), None)
    return None
