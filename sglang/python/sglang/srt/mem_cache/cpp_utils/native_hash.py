from typing import Any, Optional


def get_native_hash(
    token_ids: Any, prior_digest: Optional[bytes], page_size: Optional[int] = None
) -> str | list[str]:
    raise NotImplementedError('slim removed the body of get_native_hash: it never ran in any recording (see sglang/REMOVED.md)')
