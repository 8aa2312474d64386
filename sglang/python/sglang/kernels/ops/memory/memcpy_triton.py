"""Offset/size-driven device memcpy kernel, migrated from
``sglang.srt.layers.dp_attention`` (RFC #29630, Phase 2.5).
"""




def prod(x):
    raise NotImplementedError('slim removed the body of prod: it never ran in any recording (see sglang/REMOVED.md)')


def memcpy_triton(dst, src, dim, offset, sz, offset_src):
    raise NotImplementedError('slim removed the body of memcpy_triton: it never ran in any recording (see sglang/REMOVED.md)')
