from typing import Optional


try:
    pass
except ImportError:

    pass


def verify_petit_nvfp4_supported(quant_method: str, group_size: Optional[int]) -> None:
    raise NotImplementedError('slim removed the body of verify_petit_nvfp4_supported: it never ran in any recording (see sglang/REMOVED.md)')


