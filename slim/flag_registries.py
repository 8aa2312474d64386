"""Registries a launch flag's value selects from, and what the front door accepts.

A registration the plan deleted, or a registered class kept only by name, turns a value the front
door accepts into a lookup error or a crash at start-up instead of a refusal (slim check's
`flag_errors`, slim/flag_guards.py).
"""

from __future__ import annotations

import ast

from slim.check_surface import is_stub
from slim.env_switches import SWITCHES


def accepts(refused: set[str], flag: str, values: tuple[str, ...] = ()) -> bool:
    """Whether the front door lets the flag through set to one of `values` (any value, with none):
    `refused` holds the ids of removed surface items ("flag:--enable-lora", "flag:--x=aiter")."""
    if flag.startswith("env:"):  # an environment switch: not accepted only where slim/env_switches.py says why
        return flag.removeprefix("env:") not in SWITCHES
    if f"flag:{flag}" in refused:
        return False
    return not values or any(f"flag:{flag}={v}" not in refused for v in values)


# Decorator registries a launch flag's value selects from: `@register_attention_backend("fa3") def
# create...` fills ATTENTION_BACKENDS, which model start-up indexes by the flag's value, and
# `@register_fused_func("none", "flashinfer_trtllm")` the MoE runner table. A registration the plan
# deleted turns an accepted value into a lookup error at start-up instead of a refusal.
# Registrar -> (the file, or folder ending in /, holding its registrations; the flags whose values it
# registers; which positional argument is the value).
REGISTRIES = {"register_attention_backend": ("sglang/srt/layers/attention/attention_registry.py",
                                             ("--attention-backend", "--prefill-attention-backend",
                                              "--decode-attention-backend"), 0),
              "register_fused_func": ("sglang/srt/layers/moe/moe_runner/",
                                      ("--moe-runner-backend", "--speculative-moe-runner-backend"), 1)}


def _holds(where: str, path: str) -> bool:
    return path == where or (where.endswith("/") and path.startswith(where))


def registry_files(paths: list[str]) -> list[str]:
    """Of `paths`, those that hold some registry's registrations."""
    return [p for p in paths if any(_holds(where, p) for where, _, _ in REGISTRIES.values())]


def registered(trees: dict[str, ast.Module], registrar: str) -> set[str]:
    """The string names the registrar's decorator registers in its file(s) of a tree."""
    where, _, index = REGISTRIES[registrar]
    names = set()
    for path in (p for p in sorted(trees) if _holds(where, p)):
        for node in trees[path].body if trees[path] else ():
            for decorator in getattr(node, "decorator_list", ()):
                func = decorator.func if isinstance(decorator, ast.Call) else None
                if (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == registrar \
                        and len(decorator.args) > index and isinstance(decorator.args[index], ast.Constant):
                    names.add(decorator.args[index].value)
    return names


def lost_registrations(slim: dict[str, ast.Module], upstream: dict[str, ast.Module],
                       refused: set[str]) -> list[str]:
    """The `flag:--x=value` ids the front door accepts whose registration upstream has and the
    slimmed tree lost."""
    return sorted(f"flag:{flag}={value}" for registrar, (_, flags, _) in REGISTRIES.items()
                  for value in registered(upstream, registrar) - registered(slim, registrar)
                  for flag in flags if accepts(refused, flag, (value,)))


# Dict registries a launch flag's value indexes (`QUANTIZATION_METHODS[args.quantization]`): name ->
# (its module, the flags, the methods model loading calls on the class it finds there first). A
# class kept only by name (those methods stubbed) turns an accepted value into a crash at load.
DICT_REGISTRIES = {"BASE_QUANTIZATION_METHODS": ("sglang/srt/layers/quantization/__init__.py",
                                                 ("--quantization", "--speculative-draft-model-quantization"),
                                                 ("from_config", "get_quant_method"))}


def _dict_entries(tree: ast.Module | None, name: str) -> dict[str, str]:
    """{"awq": "AWQConfig"} of a module-level `NAME = {...}` / `NAME: T = {...}`."""
    for node in tree.body if tree else ():
        target = node.target if isinstance(node, ast.AnnAssign) else \
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id == name and isinstance(node.value, ast.Dict):
            return {k.value: ast.unparse(v) for k, v in zip(node.value.keys, node.value.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return {}


def _stubbed_methods(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Class name -> the names of its methods that are stubs, over a tree."""
    stubbed: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                stubbed.setdefault(node.name, set()).update(
                    m.name for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_stub(m))
    return stubbed


def stubbed_entries(trees: dict[str, ast.Module], refused: set[str]) -> list[str]:
    """The `flag:--x=value` ids the front door accepts whose registered class has a stub for a
    method loading calls."""
    stubbed = _stubbed_methods(trees)
    return sorted(f"flag:{flag}={value}" for name, (module, flags, methods) in DICT_REGISTRIES.items()
                  for value, cls in _dict_entries(trees.get(module), name).items()
                  if stubbed.get(cls, set()) & set(methods) for flag in flags if accepts(refused, flag, (value,)))
