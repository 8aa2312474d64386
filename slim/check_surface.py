"""The request path of a slimmed tree holds no stub and no import of a removed module.

What an accepted request can reach is approximated by files, not by a call graph: the request
path is every file of the policy's [[sampled]] paths (entrypoints, managers, sessions, sampling,
parsers, constrained decoding, the prefix caches: code whose run depends on what a request sends
and on the server's load) that no whole-file [[off_surface]] entry removes. A wholly off-surface
file serves a feature the front door refuses (slim/front_door.py: a removed route answers 410, a
removed flag value or request field is refused), so no accepted request gets there.

In those files:
- a stub (a def whose body is `_stub_body`'s `raise NotImplementedError("slim removed the body
  of ...")`) is an error: a request the recordings did not send may call it;
- an import inside a def or under an `if` of an sglang module the slimmed tree lacks is an error,
  unless a `try:` whose handlers catch ImportError guards it, it sits under `if TYPE_CHECKING:`, or
  the branch is one the platform folding drops (dead on NVIDIA). Unconditional module-level
  imports are slim/check.py's: the module body ran, so those are errors there already.

Startup code selected by launch flags is outside this approximation: a flag decides it once, at
launch, and the front door refuses the removed flag values.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from slim.module_names import resolve_relative
from slim.platform_names import folded
from slim.policy import Policy
from slim.syntax import catches_import_error

PACKAGE = "sglang"
STUB_MESSAGE = "slim removed the body of "  # slim/transforms/rewrite.py `_stub_body`
# Removed modules kept code may import lazily, each with why no accepted request or flag gets there:
# switched on by an environment variable of upstream's own CI, an experimental server or an
# experimental opt-in fast path (off by default), which are no part of the launch command's surface.
BEHIND_ENVIRONMENT = {
    "sglang.test.scripted_runtime.": "upstream's scripted test runtime (not shipped), hooked into the scheduler by "
                                     "SGLANG_TEST_SCRIPTED_RUNTIME",
    "sglang.srt.server._core": "the experimental embedded Rust server, switched on by SGLANG_RUST_SERVER",
    # Upstream topk.py:834, 1602 and moe_align_block_size.py:66 load them only under _SGLANG_EXPERIMENTAL_LORA_OPTI.
    "sglang.kernels.ops.moe.trtllm_lora_temp.": "the experimental TRT-LLM LoRA fast path's MoE kernels, switched on by "
                                                "SGLANG_EXPERIMENTAL_LORA_OPTI (off by default)",
    # Upstream moe_align_block_size.py:98-103; the default align is the sgl_kernel AOT op (kernels/ops/moe/__init__.py).
    "sglang.kernels.ops.moe.moe_align": "the JIT MoE align of the experimental LoRA fast path, switched on by "
                                        "SGLANG_EXPERIMENTAL_LORA_OPTI with SGLANG_OPT_USE_JIT_KERNEL_MOE_ALIGN",
}


def behind_environment(module: str) -> str | None:
    """Why no accepted request or flag imports `module` (BEHIND_ENVIRONMENT: a key ending in "." names a
    package's modules, any other key a module and its submodules), or None."""
    return next((why for key, why in BEHIND_ENVIRONMENT.items()
                 if (module.startswith(key) if key.endswith(".") else module == key or module.startswith(key + "."))),
                None)


def lazy_import_note(module: str, on_surface) -> str | None:
    """slim/check.py's category for a lazy import of removed `module` off the request path: why no
    accepted launch reaches it, where that is written (`on_surface(module)`: no whole-file [[off_surface]]);
    None when nothing says why."""
    if why := behind_environment(module):
        return f"imports of removed modules behind an environment switch: {why}"
    if not on_surface(module):
        return ("conditional or lazy imports of wholly off-surface sglang modules (a refused flag value, another "
                "platform or model family: slim/policy.toml says which)")
    return None


@dataclass
class SurfaceReport:
    findings: list[str] = field(default_factory=list)
    allowed: dict[str, int] = field(default_factory=dict)

    def allow(self, what: str) -> None:
        self.allowed[what] = self.allowed.get(what, 0) + 1


def is_stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The def's body is the slim stub raise (a docstring before it counts too)."""
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or not isinstance(body[0].exc, ast.Call):
        return False
    args = body[0].exc.args
    return (isinstance(body[0].exc.func, ast.Name) and body[0].exc.func.id == "NotImplementedError" and len(args) == 1
            and isinstance(args[0], ast.Constant) and str(args[0].value).startswith(STUB_MESSAGE))


class RequestPathChecker(ast.NodeVisitor):
    """One request-path file: its stubs, and its lazy or conditional imports of removed modules."""

    def __init__(self, rel: str, exists, was_module, report: SurfaceReport, off_surface=lambda module: False) -> None:
        self.rel, self.exists, self.was_module, self.report = rel, exists, was_module, report
        self.off_surface = off_surface  # module name -> whether a whole-file [[off_surface]] entry holds it
        self.qualname: list[str] = []
        self.guarded = 0  # in the body of a try: that catches ImportError, or under if TYPE_CHECKING:
        self.lazy = 0  # inside a def or an if

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.qualname.append(node.name)
        self.generic_visit(node)
        self.qualname.pop()

    def visit_FunctionDef(self, node) -> None:
        self.qualname.append(node.name)
        if is_stub(node):
            self.report.findings.append(f"{self.rel}:{node.lineno}: stub {'.'.join(self.qualname)} on the request path")
        self.lazy += 1
        self.generic_visit(node)
        self.lazy -= 1
        self.qualname.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Try(self, node: ast.Try) -> None:
        guards = catches_import_error(node)
        self.guarded += guards
        for stmt in node.body:
            self.visit(stmt)
        self.guarded -= guards
        for stmt in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        type_checking = "TYPE_CHECKING" in ast.dump(node.test)
        self.guarded += type_checking
        self.lazy += 1
        for stmt in node.body:
            self.visit(stmt)
        self.guarded -= type_checking
        for stmt in node.orelse:
            self.visit(stmt)
        self.lazy -= 1

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = resolve_relative(node.module, node.level, self.rel)
        if not self.check(node, module):
            return
        for alias in node.names:  # `from sglang.srt import removed_module`
            if alias.name != "*" and self.was_module(f"{module}.{alias.name}"):
                self.check(node, f"{module}.{alias.name}")

    def check(self, node: ast.AST, module: str) -> bool:
        """True when `module` is there (or is no sglang module)."""
        if module.split(".")[0] != PACKAGE or self.exists(module):
            return True
        if not self.lazy:
            return False  # a module-level import: slim/check.py's error
        behind = behind_environment(module)
        if self.guarded:
            self.report.allow("guarded imports of removed sglang modules on the request path")
        elif behind:
            self.report.allow(f"imports of removed modules behind an environment switch: {behind}")
        elif self.off_surface(module):
            self.report.allow("imports of wholly off-surface modules on the request path (their feature, a "
                              "platform or architecture, is refused at the front door)")
        else:
            self.report.findings.append(f"{self.rel}:{node.lineno}: imports removed module {module} "
                                        "on the request path")
        return False


def check_request_path(rels: list[str], trees, exists, was_module, policy: Policy) -> SurfaceReport:
    """The findings over the request-path files among `rels` (paths relative to the folder holding
    sglang/); `trees(rel)` parses one, `exists(module)` says whether the slimmed tree has a module,
    `was_module(name)` whether `name` is a module (upstream's, where known) slim may have removed."""
    report = SurfaceReport()
    for rel in rels:
        if not policy.on_request_path(rel):
            continue
        # branches the platform folding drops never run on NVIDIA
        RequestPathChecker(rel, exists, was_module, report,
                           lambda module: not policy.module_on_surface(module)).visit(folded(rel, trees(rel)))
    return report
