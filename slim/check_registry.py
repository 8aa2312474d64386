"""Registry entries the plan deleted while kept code still looks their keys up: a KeyError, or a silent skip.

A decorator call with a string key files its def in a table that kept code reads by that key:
`@register_dependency("cutlass")` (compile.py reads REGISTERED_DEPENDENCIES[dep]), `@warmup("prefill_shapes")`
(--warmups), `@register_fused_func("none", "marlin")`, `@app.post("/v1/embeddings")`,
`@_register_for("Qwen3MoeForCausalLM")`. No call names the def, so when no recording ran it the plan
deletes it with its decorator: upstream would run it, the slimmed tree raises or skips. Found by
comparing each module of the tree with upstream's: a registration is a module-level def or class
(under `if`/`try` too) with a decorator call whose positional arguments hold string constants (the
keys; any decorator name); one upstream has (same decorator, keys and name) and the tree lacks was
deleted. Not counted: keyword-only strings (`register_custom_op(op_name=...)`: kept code calls that
def by its name, so ruff's undefined names catch a deleted one), and `register_x("key", fn)` calls at
module level (kept module code names `fn`, so the plan keeps it; a stub of it is slim/flag_guards.py's).

Allowed, each counted with why; anything else is an error naming the file, decorator, keys and def,
with the fix (a [[keep]] of the def in slim/policy.toml, or a removal in slim/surface.toml that refuses the key):
- the registration is on a branch the platform folding drops (`if _is_musa:`): dead on NVIDIA;
- judged by hand, before any rule: NOT_LOOKED_UP below says why no accepted launch looks the key up;
  AWAITING_KEEP lists those an accepted launch does look up whose [[keep]] is still to be added (it
  changes the tree), counted loudly apart;
- slim/policy.toml puts the def [[off_surface]] (the entry's reason says which feature);
- the front door refuses the key: an HTTP route decorator (`app.post`, `app.api_route`, `router.get`)
  whose every route is removed (410); a key every launch flag that selects from its registry refuses.
  A flag selects from a registry position when it offers every key upstream registers there in files
  on the surface (--attention-backend offers each @register_attention_backend name; no flag offers
  both of @register_model_config_parser's "hf" and "mistral", so none selects there). Several keys
  are one composite key (the MoE tables' (dispatch, runner)): a lookup needs every part, so one part
  refused refuses it;
- every key is a model architecture (an upstream model file's EntryClass) that no checkpoint of the
  surface declares: another model family's (the surface's: the `architectures` of scenarios/models/*.json);
- a torch fake (`register_fake*`, key "ns::op") of an op no kept code names: torch looks it up only
  while tracing a call of that op;
- the def (for a class, each of its methods) always imports or calls into a module that policy puts
  wholly off the surface: the key selects that feature.
Without the launch flags nothing past the policy is judged (counted as such), as in check_members.

Limits: keys, not lookups. A value the code picks by itself is judged as a flag value (MoE runner
"marlin" is refused as a flag, yet NVFP4 MoE on Hopper picks it: a [[keep]] now), and a free-text flag
(--warmups, --model-config-parser) selects from no registry as far as this check can tell.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from slim.check_surface import SurfaceReport
from slim.flag_registries import accepts
from slim.module_names import resolve_relative
from slim.platform_names import folded
from slim.policy import Policy
from slim.surface.derive import ROUTER_METHODS, route_methods
from slim.syntax import module_statements

SCENARIO_MODELS = Path(__file__).resolve().parent.parent / "scenarios" / "models"
MODELS_PACKAGE = "sglang.srt.models."
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
Files = tuple[Mapping[str, Path], Mapping[str, Path]]  # module -> its file: in the tree, in upstream
BRANCHES = (ast.If, ast.Try, ast.For, ast.AsyncFor, ast.While, ast.Match)  # bodies that may not run

# Deleted registrations whose key no accepted launch looks up, where no rule above can tell: file::def -> why.
NOT_LOOKED_UP = {
    "sglang/kernels/jit/utils/deps.py::get_flashinfer_include_paths":
        "compile.py looks dependencies up by the extra_dependencies its JIT kernels list, and no kernel, upstream's "
        "either, lists flashinfer; the other reader, the .clangd generator kernels/jit/__main__.py, is a developer "
        "tool slim removed",
    "sglang/srt/layers/moe/moe_runner/triton.py::post_permute_triton_to_standard":
        "MoeRunner permutes around the triton runner only when no fused func is set (upstream moe_runner/runner.py:"
        "115-141): with LoRA (--enable-lora, refused) or upstream CI's SGLANG_CI_DISABLE_MOE_FUSED_FUNC=1; "
        "otherwise the kept @register_fused_func('none', 'triton') runs, and other dispatchers have no triton "
        "pre-permute upstream either",
}
# Deleted registrations an accepted launch looks up: each needs a [[keep]] in slim/policy.toml, which changes the
# tree (left to whoever owns the tree). Drop an entry once its keep is in.
AWAITING_KEEP: dict[str, str] = {}  # registration path -> why an accepted launch looks it up

FOLDED = "deleted registrations on branches the platform folding drops (dead on NVIDIA)"
OFF_SURFACE = "deleted registrations of defs slim/policy.toml puts off the surface (its reason says which feature)"
ROUTES = "deleted route handlers whose every route the front door answers with 410"
FLAG_VALUES = "deleted registrations under a key the front door refuses for every flag that selects from its registry"
FAMILIES = ("deleted registrations keyed on architectures no checkpoint of the surface declares (other model "
            "families; the surface's are those of scenarios/models/*.json)")
FAKES = "deleted torch fake registrations of ops no kept code names (torch looks a fake up only to trace its op)"
BODIES = ("deleted registrations whose def always imports or calls into a module slim/policy.toml puts wholly off "
          "the surface (the key selects that feature)")
EXPLAINED = "deleted registrations no accepted launch looks up (slim/check_registry.py NOT_LOOKED_UP says why)"
AWAITING = ("deleted registrations an accepted launch looks up, awaiting a keep in slim/policy.toml that changes "
            "the tree (slim/check_registry.py AWAITING_KEEP)")
NO_FLAGS = "deleted registrations (launch flags not given: not judged)"


@dataclass(frozen=True)
class Registration:
    rel: str  # "sglang/srt/x.py"
    line: int
    decorator: str  # "register_attention_backend", "app.post"
    keys: tuple[str, ...]
    name: str  # the def or class
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef = field(compare=False, repr=False)
    call: ast.Call = field(compare=False, repr=False)  # the decorator

    @property
    def identity(self) -> tuple[str, tuple[str, ...], str]:
        return self.decorator, self.keys, self.name

    @property
    def path(self) -> str:
        return f"{self.rel}::{self.name}"


def registrations(rel: str, tree: ast.Module) -> list[Registration]:
    """The module's string-keyed decorator registrations of module-level defs and classes."""
    return [Registration(rel, node.lineno, ast.unparse(dec.func), keys, node.name, node, dec)
            for node in module_statements(tree.body) if isinstance(node, (*DEFS, ast.ClassDef))
            for dec in node.decorator_list if isinstance(dec, ast.Call)
            if (keys := tuple(a.value for a in dec.args if isinstance(a, ast.Constant) and isinstance(a.value, str)))]


def route_ids(reg: Registration) -> list[str] | None:
    """`route:POST /x` ids a FastAPI route decorator declares (slim/surface/derive.py's); None for another."""
    owner, _, verb = reg.decorator.rpartition(".")
    if verb not in ROUTER_METHODS or not (owner == "app" or owner.endswith("router")):
        return None
    return [f"route:{method} {reg.keys[0]}" for method in route_methods(reg.call, verb)]


def entry_classes(tree: ast.Module | None) -> set[str]:
    """The class names a model file's `EntryClass = X` / `[X, Y]` registers."""
    return {n.id for stmt in (tree.body if tree else ()) if isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "EntryClass" for t in stmt.targets)
            for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}


def served_architectures(models: Path = SCENARIO_MODELS) -> frozenset[str]:
    """The architectures the surface's checkpoints declare (its scenario models stand in for them)."""
    return frozenset(a for path in sorted(models.glob("*.json")) for a in json.loads(path.read_text())["architectures"])


def always_reached(body: list[ast.stmt]):
    """The nodes of statements that run whenever the body does (not under a branch, nor in a nested def)."""
    for stmt in body:
        if isinstance(stmt, (*DEFS, ast.ClassDef, *BRANCHES)):
            continue
        yield from ast.walk(stmt)


def off_surface_module(reg: Registration, tree: ast.Module, policy: Policy) -> str | None:
    """The wholly off-surface sglang module the def (each method of the class) always imports or calls into:
    its own `from m import` or a name its module imports from m; None if none."""
    imported = {alias.asname or alias.name: resolve_relative(stmt.module, stmt.level, reg.rel)
                for stmt in module_statements(tree.body) if isinstance(stmt, ast.ImportFrom) for alias in stmt.names}

    def reached(body: list[ast.stmt]) -> str | None:
        for node in always_reached(body):
            module = resolve_relative(node.module, node.level, reg.rel) if isinstance(node, ast.ImportFrom) else \
                imported.get(node.id) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) else None
            if module and module.startswith("sglang.") and not policy.module_on_surface(module):
                return module
        return None

    bodies = [m.body for m in reg.node.body if isinstance(m, DEFS)] if isinstance(reg.node, ast.ClassDef) \
        else [reg.node.body]
    found = [reached(body) for body in bodies]
    return found[0] if found and all(found) else None


def selecting_flags(regs: Iterable[Registration], policy: Policy, values: set[str]) -> dict[tuple[str, int], list[str]]:
    """(decorator, key position) -> the launch flags that select from that registry: those offering every key
    upstream registers there in files on the surface (--attention-backend offers each @register_attention_backend
    name); `values` holds the inventory's `flag:--x=value` ids."""
    keys: dict[tuple[str, int], set[str]] = defaultdict(set)
    for reg in regs:
        if policy.off_surface_for(reg.rel) is None:
            for position, key in enumerate(reg.keys):
                keys[(reg.decorator, position)].add(key)
    offered: dict[str, set[str]] = defaultdict(set)
    for item in values:
        flag, _, value = item.removeprefix("flag:").partition("=")
        offered[flag].add(value)
    return {where: [flag for flag, known in offered.items() if wanted <= known] for where, wanted in keys.items()}


class _Facts:
    """What judging needs of the trees, each worked out once and only when asked."""

    def __init__(self, files: Files, upstream: Callable[[str], ast.Module | None], refused: set[str],
                 selecting: dict[tuple[str, int], list[str]], served: frozenset[str]) -> None:
        self._slim_files, self._upstream = files[0], upstream
        self._models = {m: path for m, path in files[1].items() if m.startswith(MODELS_PACKAGE)}
        self.refused, self.selecting, self.served = refused, selecting, served
        self._texts: dict[Path, bytes] = {}

    def _text(self, path: Path) -> bytes:
        if path not in self._texts:
            self._texts[path] = path.read_bytes()
        return self._texts[path]

    def refuses(self, reg: Registration) -> bool:
        """Some key is refused by every flag that selects from its registry (one part of a composite key is enough:
        the lookup needs every part)."""
        return any(flags and not any(accepts(self.refused, flag, (key,)) for flag in flags)
                   for position, key in enumerate(reg.keys) if (flags := self.selecting.get((reg.decorator, position))))

    def architecture(self, key: str) -> bool:
        """An upstream model file registers a class named `key` (its EntryClass): only files naming it are parsed."""
        return any(key in entry_classes(self._upstream(module)) for module, path in self._models.items()
                   if key.encode() in self._text(path))

    def named(self, name: str) -> bool:
        """Some kept file names `name` as a word (a call, an import, `torch.ops.ns.name`, a "gemm.name" string)."""
        word = re.compile(rb"\b" + re.escape(name.encode()) + rb"\b")
        return any(word.search(self._text(path)) for path in self._slim_files.values())


def judge(reg: Registration, tree: ast.Module, policy: Policy, facts: _Facts | None) -> str | None:
    """The allowed category of one deleted registration on NVIDIA (`tree`: upstream's module), or None: an error."""
    if reg.path in NOT_LOOKED_UP or reg.path in AWAITING_KEEP:  # judged by hand: before any rule
        return EXPLAINED if reg.path in NOT_LOOKED_UP else AWAITING
    if policy.off_surface_for(reg.rel, reg.name):
        return OFF_SURFACE
    if facts is None:
        return NO_FLAGS
    if (routes := route_ids(reg)) is not None:
        return ROUTES if all(r in facts.refused for r in routes) else None
    if facts.refuses(reg):
        return FLAG_VALUES
    if all(facts.architecture(key) for key in reg.keys) and not set(reg.keys) & facts.served:
        return FAMILIES
    if "register_fake" in reg.decorator and not facts.named(reg.keys[0].rpartition("::")[2]):
        return FAKES
    return BODIES if off_surface_module(reg, tree, policy) else None


def check_registry(rels: dict[str, str], slim: Callable[[str], ast.Module | None],
                   upstream: Callable[[str], ast.Module | None] | None, policy: Policy,
                   flags: tuple[set[str], set[str]] | None = None,
                   files: Files = ({}, {}),
                   architectures: frozenset[str] | None = None) -> SurfaceReport:
    """slim check's findings over the registrations the plan deleted: `rels` maps each module of the tree to its
    file, `slim`/`upstream` a module to its parsed tree (None where absent; no `upstream`: no findings); `flags`
    the ids of the surface items the front door refuses and of the flag values upstream offers; `files` each
    module's path in the tree and in upstream (their text is searched for op names and model architectures);
    `architectures` those of the surface's checkpoints (default: the scenario models')."""
    report = SurfaceReport()
    if upstream is None:
        return report
    with warnings.catch_warnings():  # upstream's own invalid escapes ("\(" in rpd_utils.py) are no finding here
        warnings.simplefilter("ignore", SyntaxWarning)
        pairs = [(rel, before, after) for module, rel in sorted(rels.items(), key=lambda item: item[1])
                 if (before := upstream(module)) is not None and (after := slim(module)) is not None]
    regs = {rel: registrations(rel, before) for rel, before, _ in pairs}
    facts = None
    if flags:
        selecting = selecting_flags((r for found in regs.values() for r in found), policy, flags[1])
        facts = _Facts(files, upstream, flags[0], selecting,
                       served_architectures() if architectures is None else architectures)
    for rel, before, after in pairs:
        kept = {r.identity for r in registrations(rel, after)}
        gone = [r for r in regs[rel] if r.identity not in kept]
        on_nvidia = {r.identity for r in registrations(rel, folded(rel, before))} if gone else set()
        for reg in gone:
            if what := judge(reg, before, policy, facts) if reg.identity in on_nvidia else FOLDED:
                report.allow(what)
                continue
            keys = ", ".join(repr(k) for k in reg.keys)
            report.findings.append(
                f"{reg.rel} (upstream line {reg.line}): @{reg.decorator}({keys}) registered {reg.name}, which slim "
                "deleted, and the front door accepts the key: kept code that looks it up fails where upstream runs "
                f"it (keep {reg.path} in slim/policy.toml with its reason, or refuse the key in slim/surface.toml)")
    return report
