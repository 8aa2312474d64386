"""NPU interleaved RoPE cos/sin cache for DeepSeek-V4 on Ascend.

One Dsv4NpuRoPE per freqs_cis (singleton by id). Tables are built once at
init and registered as buffers on the shared rotary_emb, so model.to() moves
them and a captured aclgraph sees stable tensors; decode only does index_select.

mscale: cos/sin stored in freqs_cis must already be pre-multiplied by the YARN
mscale at precompute time (see precompute_freqs_cis). We just read what's stored.
"""

from typing import Optional

import torch


class Dsv4NpuRoPE:
    """Interleaved cos/sin tables, layout [c0,c0,c1,c1,...] / [s0,s0,s1,s1,...]."""

    # id(freqs_cis) -> instance. freqs_cis is a module buffer, lives with the model.
    _instances: dict[int, "Dsv4NpuRoPE"] = {}

    def __init__(
        self, freqs_cis: torch.Tensor, rotary_emb: Optional[object] = None
    ) -> None:
        self.freqs_cis = freqs_cis
        # cos/sin registered as buffers on this module (None -> fall back to _tables).
        self.rotary_emb = rotary_emb
        # contiguous real/imag halves of complex freqs_cis [max_pos, rope_dim/2];
        # .real/.imag are strided views, materialize once to avoid per-call
        # StridedSlice from aclnnIndex over the strided views.
        self._real_imag: Optional[tuple[torch.Tensor, torch.Tensor]] = None
        self._tables: dict[
            tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]
        ] = {}

    @classmethod
    def for_freqs(
        cls, freqs_cis: torch.Tensor, rotary_emb: Optional[object] = None
    ) -> "Dsv4NpuRoPE":
        raise NotImplementedError("removed by slim: never run in any recording")




    def ensure_tables(
        self, dtype: torch.dtype, *, allow_build: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError("removed by slim: never run in any recording")


    @staticmethod
    def apply_rotary_mul_inplace(
        q_rope: torch.Tensor,
        kv_rope: Optional[torch.Tensor],
        cos4: torch.Tensor,
        sin4: torch.Tensor,
        qk_nope_dim: int = 0,
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")
