"""Kept classes the plan cut overrides from: built anywhere, they fail or silently run their base's code.

Found on GPU (2026-12-07): `SGLANG_ENABLE_UNIFIED_RADIX_TREE=1` makes the cache registry build
`UnifiedRadixCache`, a `BasePrefixCache` whose overrides of the base's abstract methods
(`match_prefix`, `evict`, ...) the plan had cut as never run; the scheduler died with "Can't
instantiate abstract class". The class stayed in the tree because kept code names it, so no check of
names or imports saw anything wrong. Worse is an override of a concrete base method (`__init__`,
`_compute_inv_freq` of a RoPE variant): the class builds and silently runs its base's version.

A class is broken when upstream's version of it (or of an in-tree ancestor between it and the base)
defined a name the slimmed one no longer does while its family still offers that name abstract or
from a base (dunder methods other than `__init__` aside). Each place kept code builds it (`Cls(...)`,
the name resolved as slim/check_members.py resolves class names) is judged like a stub's call:
dropped by the platform folding or in [[off_surface]] code, allowed; under a launch-flag test the
front door refuses, allowed; reached only as REACHED_ONLY_BY says (the condition is computed
elsewhere: a checkpoint's config, a caller), allowed; anything else (no test, an environment
switch, an accepted flag) is an error, since nothing refuses it first.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from slim.check_members import ClassKey, TreeClasses, class_members
from slim.check_surface import SurfaceReport
from slim.flag_guards import guarded_attributes, needs, unrefused
from slim.platform_names import folded
from slim.policy import Policy

BUILT = "constructions of classes whose overrides the plan cut"
FOLDED = f"{BUILT}, on branches the platform folding drops (dead on NVIDIA)"
OFF_SURFACE = (f"{BUILT}, in off-surface code (its feature is refused at the front door: slim/policy.toml's "
               "off_surface entry says which)")
REFUSED = f"{BUILT}, under launch flags the front door refuses"
REACHED_ONLY = f"{BUILT}, whose condition a caller computes, each reached only as REACHED_ONLY_BY says"

# Where the condition is computed away from the construction (a checkpoint's config, a caller), no
# flag test is in sight: (the classes, the surface items that must all be refused for the claim to
# hold or None, why nothing on the surface builds them). Sources: upstream 0.5.17, file:line.
REACHED_ONLY_BY_TABLE = (
    (("KTEPWrapperMethod",), ("flag:--kt-weight-path",),
     "create_kt_config_from_server_args returns None unless --kt-weight-path is set (layers/moe/kt_ep_wrapper.py:73)"),
    (("IncModelLoader",), ("flag:--quantization=auto-round-int8",),
     "built for quantization auto-round-int8 (model_loader/loader.py get_model_loader), which the launch parser "
     "and, declared by a checkpoint, ModelConfig's front door refuse"),
    (("SWATokenToKVPoolAllocator", "PureSWATokenToKVPoolAllocator", "SWAChunkCache", "PureSWAChunkCache",
      "SWAChunkCapPoolConfigurator", "HybridSWAPoolConfigurator", "DSV4PoolConfigurator"), None,
     "is_hybrid_swa comes from the model config (model_runner.py:307): sliding-window architectures (and DeepSeek "
     "V4) only, which DeepSeek V2/V3/R1 are not"),
    (("Mamba2AttnBackend",), None, "the linear-attention backend of hybrid Mamba models (attention_registry.py)"),
    (("Indexer", "IndexerTopkCapturer"), None,
     "DeepSeek Sparse Attention's top-k indexer: built when the config declares index layers (use_dsa, "
     "models/deepseek_v2.py; state_capturer/indexer_topk.py), V3.2 only"),
    (("HybridFp8NvFp4Config",), None,
     "the hybrid FP8/NVFP4 MoE of DeepSeek V4 NVFP4 checkpoints (model_config.nvfp4_moe_meta, model_loader/loader.py)"),
    (("DecodeTransferQueue", "DecodePreallocQueue", "PrefillBootstrapQueue", "DecodeReqToTokenPool"),
     ("flag:--disaggregation-mode=prefill", "flag:--disaggregation-mode=decode"),
     "PD disaggregation's queues and pools: built when disaggregation_mode is prefill or decode "
     "(managers/scheduler.py, mem_cache/kv_cache_configurator.py)"),
    (("LoRAManager", "LoRAOverlapLoader"), ("flag:--enable-lora",),
     "built when LoRA is enabled (model_executor/model_runner.py init_lora_manager, managers/scheduler.py)"),
    (("HiSparseCoordinator",), ("flag:--enable-hisparse",), "built when hierarchical sparse attention is enabled"),
    (("HarmonyParser",), ("flag:--reasoning-parser=gpt-oss", "flag:--tool-call-parser=gpt-oss"),
     "gpt-oss's Harmony format: its reasoning parser and tool-call detector build it"),
    (("PackWeightMethod",), None, "CPU (AMX) only: built under `_is_cpu and _is_cpu_amx_available` (deepseek_v2.py)"),
    (("HashTopK",), None, "the hash routing of DeepSeek V4's first layers (n_hash_layers from the config)"),
    (("Mxfp4MarlinMoEMethod", "Mxfp4FlashinferCutlassMoEMethod", "Mxfp4FlashinferTrtllmMoEMethod"), None,
     "DeepSeek V4's FP4 experts (quant_config.is_fp4_experts from the model config: layers/quantization/fp8.py)"),
    (("DeepseekV2Config", "Qwen3ForCausalLM"), None,
     "built by other families' model and config classes (dots.vlm1's config, Qwen3-ASR's language model)"),
    (("DualChunkRotaryEmbedding", "Llama3RotaryEmbedding", "MRotaryEmbedding", "DynamicNTKAlphaRotaryEmbedding",
      "DynamicNTKScalingRotaryEmbedding", "YaRNScalingMRotaryEmbedding", "Gemma4RotaryEmbedding",
      "FourierRotaryEmbedding", "Phi3LongRoPEScaledRotaryEmbedding"), None,
     "the checkpoint's rope_scaling picks the RoPE class (layers/rotary_embedding/factory.py get_rope: dual-chunk, "
     "llama3, M-RoPE, dynamic NTK, proportional); DeepSeek V2/V3/R1 build DeepseekScalingRotaryEmbedding "
     "(deepseek_yarn)"),
)
REACHED_ONLY_BY = {cls: (item, why) for classes, item, why in REACHED_ONLY_BY_TABLE for cls in classes}


def _abstract(node: ast.ClassDef) -> set[str]:
    """The names a class body declares with @abstractmethod (or abc's abstractproperty)."""
    return {stmt.name for stmt in node.body if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(ast.unparse(d).rsplit(".", 1)[-1] in ("abstractmethod", "abstractproperty")
                    for d in stmt.decorator_list)}


def cut_overrides(classes: TreeClasses, key: ClassKey) -> set[str]:
    """The names the class resolves elsewhere than upstream's does (the plan cut the definition that
    came first: it and its in-tree ancestors, nearest first), or only to an abstract declaration:
    building it then fails, or runs a base's version."""
    family = classes.family(key)
    slim = [(class_members(classes.node(k)), _abstract(classes.node(k))) for k in family]
    upstream = [classes.upstream_members(k) for k in family]
    broken = set()
    for name in set().union(*upstream):
        if name.startswith("__") and name != "__init__":
            continue
        before = next(i for i, members in enumerate(upstream) if name in members)
        now = next((i for i, (members, _) in enumerate(slim) if name in members), None)
        if now is not None and (now != before or name in slim[now][1]):
            broken.add(name)
        elif now is None and (name == "__init__" or any(name in abstract for _, abstract in slim)):
            broken.add(name)  # no __init__ left in the tree's family: object's runs, taking no arguments
    return broken


def _calls(tree: ast.Module) -> dict[tuple[int, int], str]:
    """(line, column) of each call of a plain name in a tree -> the name."""
    return {(node.func.lineno, node.func.col_offset): node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def check_overrides(rels: dict[str, str], slim: Callable[[str], ast.Module | None],
                    upstream: Callable[[str], ast.Module | None] | None, policy: Policy,
                    flags: tuple[dict[str, str], set[str]] | None = None,
                    classes: TreeClasses | None = None) -> SurfaceReport:
    """slim check's findings over the constructions of classes whose overrides the plan cut (`rels`,
    `slim`, `upstream` as for slim/check_members.py; no `upstream`: nothing to compare, no findings)."""
    report = SurfaceReport()
    if upstream is None:
        return report
    classes = classes or TreeClasses(rels, slim, upstream)  # slim check builds one for both checks
    broken = {key: gone for key in classes.bases if (gone := cut_overrides(classes, key))}
    if not broken:
        return report
    for module, rel in sorted(rels.items(), key=lambda item: item[1]):
        tree = slim(module)
        names = classes.names(module) if tree else {}  # cached: the member check resolved them already
        built = {pos: name for pos, name in _calls(tree).items() if names.get(name) in broken} if tree else {}
        if not built:
            continue
        nvidia = folded(rel, tree)  # the folding keeps the positions of what it keeps
        live = built if nvidia is tree else {pos: name for pos, name in _calls(nvidia).items() if pos in built}
        found = guarded_attributes(rel, nvidia, flags[0], {}, set(live.values())) if flags else []
        guards = {g.where: g for g in found}
        for (line, col), name in sorted(built.items()):
            key = names[name]
            what = f"{rel}:{line}: builds {key[1]}, whose {', '.join(sorted(broken[key]))} the plan cut"
            guard = guards.get(f"{rel}:{line}")
            if (line, col) not in live:
                report.allow(FOLDED)
            elif policy.off_surface_for(rel, _enclosing(tree, line)) is not None:
                report.allow(OFF_SURFACE)
            elif guard and not unrefused([guard], flags[1]):
                report.allow(REFUSED)
            elif (claim := REACHED_ONLY_BY.get(key[1].rsplit(".", 1)[-1])) and (
                    claim[0] is None or (flags and set(claim[0]) <= flags[1])):
                report.allow(REACHED_ONLY)
            else:
                when = f" when {needs(guard)}, which the front door accepts" if guard else ""
                report.findings.append(f"{what}{when} (it fails or runs its base's: keep them, or refuse what "
                                       "leads there)")
    return report


def _enclosing(tree: ast.Module, line: int) -> str:
    """The qualname of the innermost def or class holding `line` ("<module>" at top level)."""
    path: list[str] = []
    body = tree.body
    while True:
        inner = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and n.lineno <= line <= (n.end_lineno or n.lineno)), None)
        if inner is None:
            return ".".join(path) or "<module>"
        path.append(inner.name)
        body = inner.body
