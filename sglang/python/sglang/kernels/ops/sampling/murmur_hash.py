

def murmur_hash32(seed, positions, col_indices):
    raise NotImplementedError('slim removed the body of murmur_hash32: it never ran in any recording (see sglang/REMOVED.md)')
