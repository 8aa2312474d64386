
import torch


def _dequantize_k_cache_fast_wrapped(
    quant_k_cache: torch.Tensor,
    dv: int = 512,
    tile_size: int = 128,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of _dequantize_k_cache_fast_wrapped: it never ran in any recording (see sglang/REMOVED.md)')


def dequantize_k_cache_paged(
    quant_k_cache: torch.Tensor,
    page_table_1_flattened: torch.Tensor,
    group_size: int = 128,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of dequantize_k_cache_paged: it never ran in any recording (see sglang/REMOVED.md)')


# Tokens handled by one program of the vectorized gather kernel.  4 tokens
# x 512 fp8 nope elements = 2048 elements per program: with num_warps=4
# (128 threads) that is 16 fp8 elements per thread, which Triton emits as
# a single 16-byte vectorized load/store per thread.
_GATHER_TOKENS_PER_PROG = 4


if __name__ == "__main__":
    raise Exception("UT is in quant_k_cache.py")


