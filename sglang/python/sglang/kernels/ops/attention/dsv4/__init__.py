"""DeepSeek-V4 attention kernels (RFC #29630, Phase 2.5)."""

# --- merged from sglang.kernels.ops.attention.dsv4 (RFC #29630 Phase 4) ---
from .c128_cleanup import clear_unaccepted_c128_draft_states
from .compress import (
    CompressorDecodePlan,
    CompressorPrefillPlan,
    )
from .gemm import linear_bf16_fp32
from .moe import (
    mask_topk_ids,
    mega_moe_pre_dispatch,
    silu_and_mul_clamp,
    silu_and_mul_contig_post_quant,
    silu_and_mul_masked_post_quant,
)
from .utils import make_name

__all__ = [
    "CompressorDecodePlan",
    "CompressorPrefillPlan",
    "clear_unaccepted_c128_draft_states",
    "make_name",
    "linear_bf16_fp32",
    "mega_moe_pre_dispatch",
    "mask_topk_ids",
    "silu_and_mul_clamp",
    "silu_and_mul_masked_post_quant",
    "silu_and_mul_contig_post_quant",
]
