from __future__ import annotations



_K3_N_GEMM_DISPATCH_MAP = {
    (144, 7168): 16,
    (896, 7168): 8,
}
_K3_K_GEMM_DISPATCH_MAP = {
    (1536, 128): 12,
}


__all__ = [
    
]
