
import triton


PAD_SLOT_ID = -1


CHUNK_SIZE = 64

# ---------------------------------------------------------------------------
# Causal conv1d forward with cache-loaded prefix (Triton).
#
# Replaces the former Helion kernel: Helion lowers through torch.fx/dynamo, so the
# dynamic extend batch B becomes an *unbacked* symint and an `if is_decode` mask
# branch tripped `GuardOnDataDependentSymNode: Eq(u1, 1)`.  Triton has no symbolic
# -shape guard machinery: `IS_DECODE: tl.constexpr` resolves the mask branch at JIT
# compile time, so the decode specialization compiles with ZERO mask load/multiply
# and the extend specialization keeps the mask multiply — both guard-free.
# ---------------------------------------------------------------------------


def _conv_prefix_autotune_configs() -> list[triton.Config]:
    """Block-size configs for the prefix conv. D=256, W small => memory-bound; favor
    coalesced D loads (D is the contiguous axis; the token axis is strided).

    The x window is loaded ONCE per tile (BLOCK_T + W - 1 unique rows) and the W taps
    are static-offset slices within it, so larger BLOCK_T both amortizes the per-tile
    metadata loads and maximizes window reuse — hence the wide BLOCK_T sweep for the
    large-T extend regime, while small BLOCK_T configs cover decode (T=B is moderate,
    so more channel blocks fill the GPU)."""
    configs = []
    for block_t in (1, 2, 4, 8, 16, 32, 64, 128):
        for block_d in (128, 256):
            # num_warps scaled to the tile so small tiles don't over-subscribe and
            # large tiles get enough parallelism; a couple of num_stages each.
            tile = block_t * block_d
            if tile <= 256:
                warps_opts = (2, 4)
            elif tile <= 4096:
                warps_opts = (4, 8)
            else:
                warps_opts = (8,)
            for num_warps in warps_opts:
                for num_stages in (2, 3, 4):
                    configs.append(
                        triton.Config(
                            {"BLOCK_T": block_t, "BLOCK_D": block_d},
                            num_warps=num_warps,
                            num_stages=num_stages,
                        )
                    )
    return configs


# todo(horace): Shift this to be precomputed data
# has_initial_state variants for the fused extend metadata kernel.
HIS_ZEROS = 0  # boundary-KV draft extend: force conv to run fresh
HIS_PREFIX = 1  # extend_prefix_lens > 0
HIS_SEQ_MINUS_EXT = 2  # (seq_lens[:B] - extend_seq_lens) > 0 (draft_extend_v2 capture)
HIS_ONES = 3  # target_verify: always has initial state

# The single-tile local cumsum bounds the fused path; larger batches fall back
# to the unfused op sequence.
_FUSED_EXTEND_MAX_B = 1023


# ---------------------------------------------------------------------------
# Fused decode kernel: causal_conv1d + update_sconv_cache in one launch
# ---------------------------------------------------------------------------


