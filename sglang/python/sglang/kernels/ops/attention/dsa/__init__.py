"""DeepSeek DSA kernels (RFC #29630, Phase 2.5)."""

# --- merged from sglang.kernels.ops.attention.dsa (RFC #29630 Phase 4) ---


def pick_dsl_expand(*args, **kwargs):
    raise NotImplementedError('slim removed the body of pick_dsl_expand: it never ran in any recording (see sglang/REMOVED.md)')


def __getattr__(name: str):
    if name == "CuteDSLPagedMQALogitsRunner":
        from .cutedsl_paged_mqa_logits import CuteDSLPagedMQALogitsRunner

        return CuteDSLPagedMQALogitsRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CuteDSLPagedMQALogitsRunner",
    "pick_dsl_expand",
]
