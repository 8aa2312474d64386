"""`slim check`: static integrity of a slimmed tree (no GPU, no imports of sglang).

- every file compiles;
- no undefined names (ruff F821/F822/F823) beyond upstream's own, except names upstream binds
  only on other platforms (under a folded `if _is_hip:`; undefined on NVIDIA upstream too);
- every import resolves: in the tree, the stdlib, or a declared dependency. Inside a `try:` that
  catches ImportError or `if TYPE_CHECKING:` a module may be missing; inside a function or
  branch, an sglang module the policy puts off the surface (below);
- no `from m import name` / `m.name` names a symbol slim deleted from a kept sglang module;
- the request path holds no stub and no lazy import of a removed module (slim/check_surface.py);
- nothing on the request path or under an accepted flag reads a deleted class member (slim/check_members.py);
- no registration the plan deleted is under a key the front door accepts (slim/check_registry.py);
- a file slim/policy.toml keeps whole imports no cut module that is on the surface.

What it allows, each printed as "allowed: N <what>", and why that is safe:
- conditional or lazy imports of removed sglang modules off the request path (on it, errors of
  slim/check_surface.py), counted by why no accepted launch reaches them: the module is wholly
  [[off_surface]] (a refused flag value, another platform or model family: each reason quotes
  upstream's branch) or an environment opt-in loads it; with neither, it is an error;
- guarded imports of removed sglang modules: under a `try:` that catches ImportError the code
  handles the module's absence as it does on an install without that optional piece; under
  `if TYPE_CHECKING:` they never run;
- imports of packages upstream does not declare either: upstream's optional packages, which an
  upstream install lacks just the same (every one a declared package provides is checked);
- names upstream binds only on other platforms: bound under a folded `if _is_hip:`, so undefined
  on NVIDIA upstream too, and only read on branches dead there;
- undefined names and failing lazy imports upstream has too: its own dead code, unchanged.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slim.check_members import TreeClasses, check_members
from slim.check_overrides import check_overrides
from slim.check_registry import check_registry
from slim.check_surface import check_request_path, lazy_import_note
from slim.deps import base_requirements, distribution, is_stdlib, normalize, requirement_name
from slim.flag_guards import flag_errors
from slim.flag_registries import registry_files
from slim.front_door import ENTRY_DOOR_MARK
from slim.module_names import module_name, resolve_relative
from slim.platform_names import folded
from slim.policy import Policy, load_policy
from slim.syntax import catches_import_error, module_statements, names_bound

PACKAGE = "sglang"


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1


def _bindings(tree: ast.Module, path: str = "") -> tuple[set[str], set[str]]:
    """Names a module binds at top level (compound statements included), and the modules it
    star-imports (resolved: `from .entrypoint import *` in a package)."""
    names, stars = set[str](), set[str]()
    for stmt in module_statements(tree.body):
        names |= names_bound(stmt)
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            stars.add(resolve_relative(stmt.module, stmt.level, path))
    return names, stars


def _is_door(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(ENTRY_DOOR_MARK)) == ENTRY_DOOR_MARK


class Modules:
    """The modules of one tree (its package folder's parent), parsed on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # A removed entry point's door module (slim/front_door.py) raises ModuleNotFoundError when
        # imported: to the checks it is the absent module it stands for.
        self.files = {module_name(p.relative_to(root).as_posix()): p
                      for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts and not _is_door(p)}
        self._trees: dict[str, ast.Module] = {}
        self._bound: dict[str, tuple[set[str], set[str]]] = {}
        self._platform_only: dict[str, set[str]] = {}

    def tree(self, module: str) -> ast.Module | None:
        if module not in self._trees and module in self.files:
            self._trees[module] = ast.parse(self.files[module].read_bytes())
        return self._trees.get(module)

    def platform_only(self, module: str) -> set[str]:
        """`_platform_only` of a module, once per module."""
        if module not in self._platform_only:
            tree = self.tree(module)
            self._platform_only[module] = _platform_only(tree, self.files[module].relative_to(self.root).as_posix()) \
                if tree else set()
        return self._platform_only[module]

    def exists(self, module: str) -> bool:
        path = self.root / module.replace(".", "/")
        # Extension modules too: "x/_core.cpython-312-x86_64-linux-gnu.so" is module x._core.
        return module in self.files or path.is_dir() or any(path.parent.glob(f"{path.name}.*.so"))

    def bindings(self, module: str) -> tuple[set[str], set[str]]:
        """`_bindings` of a module, once per module (every import and `m.attr` of the tree asks)."""
        if module not in self._bound:
            tree = self.tree(module)
            self._bound[module] = _bindings(tree, self.files[module].relative_to(self.root).as_posix()) \
                if tree else (set(), set())
        return self._bound[module]

    def binds(self, module: str, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """Whether `module.name` exists: bound there, a submodule, or bound by a module of this
        tree it star-imports (a star import of anything else may bind anything)."""
        names, stars = self.bindings(module)
        if name in names or "__getattr__" in names or self.exists(f"{module}.{name}"):
            return True
        return any(star not in self.files or (star not in seen and self.binds(star, name, seen | {module}))
                   for star in stars)


class ImportChecker(ast.NodeVisitor):
    def __init__(self, rel: str, slim: Modules, upstream: Modules | None, declared: set[str],
                 upstream_declared: set[str], report: Report, request_path: bool = False,
                 kept_whole: bool = False, on_surface: Callable[[str], bool] = lambda module: True) -> None:
        self.rel, self.here = rel, module_name(rel)
        self.slim, self.upstream, self.report = slim, upstream, report
        self.declared, self.upstream_declared = declared, upstream_declared
        self.guarded = 0  # inside a try: that catches ImportError, or if TYPE_CHECKING:
        self.in_function = 0
        self.conditional = 0  # inside an if
        self.module_aliases: dict[str, str] = {}  # local name -> sglang module
        self.request_path = request_path  # its lazy imports are slim/check_surface.py's to judge
        self.kept_whole = kept_whole  # policy keeps this file whole: a module it imports on the surface must stay
        self.on_surface = on_surface  # module -> no whole-file [[off_surface]] entry holds it

    def error(self, node: ast.AST, message: str) -> None:
        self.report.errors.append(f"{self.rel}:{node.lineno}: {message}")

    def visit_Try(self, node: ast.Try) -> None:
        # Only a handler that catches ImportError makes a missing module an expected outcome.
        guarded = catches_import_error(node)
        self.guarded += guarded
        for stmt in node.body:
            self.visit(stmt)
        self.guarded -= guarded
        for stmt in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(stmt)

    def visit_If(self, node: ast.If) -> None:
        guarded = "TYPE_CHECKING" in ast.dump(node.test)
        self.visit(node.test)  # `if m.FLAG:` reads a module attribute too
        self.guarded += guarded
        self.conditional += 1
        for stmt in node.body:
            self.visit(stmt)
        self.guarded -= guarded
        for stmt in node.orelse:
            self.visit(stmt)
        self.conditional -= 1

    def visit_FunctionDef(self, node) -> None:
        self.in_function += 1
        self.generic_visit(node)
        self.in_function -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
            if alias.name.startswith(PACKAGE + ".") and alias.asname:
                self.module_aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = resolve_relative(node.module, node.level, self.rel)
        if not self.check_module(node, module) or not module.split(".")[0] == PACKAGE:
            return
        for alias in node.names:
            if alias.name == "*" or self.slim.binds(module, alias.name):
                if self.slim.exists(f"{module}.{alias.name}"):
                    self.module_aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
                continue
            if self.guarded:
                continue
            if self.upstream and self.upstream.exists(f"{module}.{alias.name}"):
                self.check_module(node, f"{module}.{alias.name}")  # a submodule: as `import m.name`
            elif self.upstream and alias.name in self.upstream.platform_only(module):
                self.report.note("names upstream binds only on other platforms (folded away)")
            elif self.upstream and self.upstream.binds(module, alias.name):
                self.error(node, f"`from {module} import {alias.name}`: {alias.name} was deleted by slim")
            else:
                self.report.note("names upstream does not define either")

    def check_module(self, node: ast.AST, module: str) -> bool:
        """True when the module is there (or need not be)."""
        top = module.split(".")[0]
        if top == PACKAGE:
            if self.slim.exists(module):
                return True
            if self.kept_whole and self.upstream and self.upstream.exists(module) and self.on_surface(module):
                # guarded or not: the keep promises the feature, and a caught ImportError would quietly
                # take it away (fa4's vendored kernels behind flash_attention_v4.py's try)
                self.error(node, f"import of {module}: this file is kept whole by slim/policy.toml, but the module "
                           "was cut (keep it too, or put it off the surface in slim/policy.toml with its reason)")
            elif self.guarded:
                self.report.note("guarded imports of removed sglang modules")
            elif (self.in_function or self.conditional) and self.request_path:
                pass
            elif (self.in_function or self.conditional) and self.upstream and self.upstream.exists(module):
                if why := lazy_import_note(module, self.on_surface):  # its body ran, this import never did
                    self.report.note(why)
                else:
                    self.error(node, f"lazy import of {module}, which slim cut: no policy says why no accepted "
                               "launch reaches it (record or keep it, or put it off the surface)")
            elif (self.in_function or self.conditional) and self.upstream and not self.upstream.exists(module):
                self.report.note("lazy imports that fail in upstream too (upstream dead code)")
            else:
                self.error(node, f"import of {module}: not in the slimmed tree")
            return False
        if is_stdlib(top) or distribution(top) in self.declared or self.guarded:
            return True
        if distribution(top) in self.upstream_declared and self.in_function:
            # slim/deps.py dropped it: only deferred imports, none recorded, no accepted option served.
            self.report.note("lazy imports of distributions pruned from pyproject (slim/deps.py)")
        elif distribution(top) in self.upstream_declared:
            self.error(node, f"import of {top}: its distribution {distribution(top)} was pruned from pyproject")
        else:
            self.report.note("imports of packages upstream does not declare either (optional)")
        return True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            module = self.module_aliases[node.value.id]
            if (self.upstream and not self.slim.binds(module, node.attr)
                    and self.upstream.binds(module, node.attr)
                    and node.attr not in self.upstream.platform_only(module)):
                self.error(node, f"{node.value.id}.{node.attr}: {module}.{node.attr} was deleted by slim")
        self.generic_visit(node)


def _ruff(root: Path, files: list[str]) -> list[dict]:
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "F821,F822,F823",
           "--output-format", "json", "--exit-zero", *files]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ruff failed: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout or "[]")


def _platform_only(tree: ast.Module, rel: str) -> set[str]:
    """Names upstream binds (anywhere in the file) only in branches the platform folding drops
    (`if _is_hip:`): unbound on NVIDIA upstream too."""
    on_nvidia = folded(rel, tree)
    return set() if on_nvidia is tree else _bound_anywhere(tree) - _bound_anywhere(on_nvidia)


def _bound_anywhere(tree: ast.Module) -> set[str]:
    return {name for node in ast.walk(tree) if isinstance(node, ast.stmt) for name in names_bound(node)}


def undefined_names(tree_root: Path, upstream_root: Path | None, rels: list[str], report: Report) -> None:
    slim_hits = _ruff(tree_root, rels)
    baseline = set()
    if upstream_root:
        baseline = {(Path(h["filename"]).relative_to(upstream_root).as_posix(), h["code"], h["message"])
                    for h in _ruff(upstream_root, [r for r in rels if (upstream_root / r).is_file()])}
    platform_cache: dict[str, set[str]] = {}
    for hit in slim_hits:
        rel = Path(hit["filename"]).relative_to(tree_root).as_posix()
        if (rel, hit["code"], hit["message"]) in baseline:
            report.note("undefined names upstream has too")
            continue
        name = hit["message"].split("`")[1] if "`" in hit["message"] else ""
        if upstream_root and rel not in platform_cache:
            source = upstream_root / rel
            platform_cache[rel] = _platform_only(ast.parse(source.read_bytes()), rel) if source.is_file() else set()
        if name in platform_cache.get(rel, set()):
            report.note("names upstream binds only on other platforms (folded away)")
            continue
        report.errors.append(f"{rel}:{hit['location']['row']}: {hit['code']} {hit['message']}")


def check_tree(tree: Path, upstream: Path | None, policy: Policy | None = None,
               flags: tuple[dict[str, str], set[str], set[str]] | None = None) -> Report:
    """`tree` holds python/sglang and python/pyproject.toml; `upstream` the unpacked wheel; `policy`
    (default: the project's) says which files are on the request path; `flags`, when given, the
    launch flags (ServerArgs field -> flag), the surface items the front door refuses and the ids
    of the flag values upstream offers, to find stubs an accepted flag or value leads to
    (slim/flag_guards.py)."""
    policy = policy or load_policy()
    report = Report()
    tree = tree.resolve()  # ruff reports absolute paths; compare like with like
    root = tree / "python"
    if not (root / PACKAGE).is_dir():
        report.errors.append(f"{tree}: no python/{PACKAGE} (not a slimmed tree)")
        return report
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(r) for r in project.get("dependencies", [])}
    upstream_declared = declared | (base_requirements(upstream, PACKAGE) if upstream else set())
    slim_modules, upstream_modules = Modules(root), Modules(upstream) if upstream else None
    rels = sorted(p.relative_to(root).as_posix() for p in slim_modules.files.values())
    compile_errors: set[str] = set()
    for rel in rels:
        source = (root / rel).read_bytes()
        try:
            compile(source, rel, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            report.errors.append(f"{rel}: does not compile: {exc}")
            compile_errors.add(rel)
            continue
        whole = policy.whole_for(rel) is not None or rel in policy.files
        ImportChecker(rel, slim_modules, upstream_modules, {normalize(d) for d in declared}, upstream_declared,
                      report, policy.on_request_path(rel), whole, policy.module_on_surface
                      ).visit(slim_modules.tree(module_name(rel)))
    undefined_names(root, upstream, rels, report)
    was_module = upstream_modules.exists if upstream_modules else lambda module: False
    parsed = [r for r in rels if r not in compile_errors]
    surface = check_request_path(parsed, lambda rel: slim_modules.tree(module_name(rel)),
                                 slim_modules.exists, was_module, policy)
    rels_of, upstream_tree = {module_name(rel): rel for rel in parsed}, upstream_modules and upstream_modules.tree
    classes = TreeClasses(rels_of, slim_modules.tree, upstream_tree) if upstream_tree else None
    members = check_members(rels_of, slim_modules.tree, upstream_tree, policy, flags and flags[:2], classes)
    registry = check_registry(rels_of, slim_modules.tree, upstream_tree, policy, flags and flags[1:],
                              (slim_modules.files, upstream_modules.files if upstream_modules else {}))
    overrides = check_overrides(rels_of, slim_modules.tree, upstream_tree, policy, flags and flags[:2], classes)
    for found in (surface, members, registry, overrides):
        report.errors += found.findings
        for what, n in found.allowed.items():
            report.notes[what] = report.notes.get(what, 0) + n
    if flags:
        trees = {rel: slim_modules.tree(module_name(rel)) for rel in parsed}
        upstream_trees = None
        if upstream_modules:  # the registry files of upstream, to compare registrations with
            paths = registry_files(sorted(p.relative_to(upstream_modules.root).as_posix()
                                          for p in upstream_modules.files.values()))
            upstream_trees = {path: upstream_modules.tree(module_name(path)) for path in paths}
        report.errors += flag_errors(trees, upstream_trees, *flags)
    return report
