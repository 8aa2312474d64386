import __future__

from typing import Optional


from sglang.srt.debug_utils.source_patcher.types import (
    PatchState,
)


def apply_patches_from_config(
    yaml_content: str,
    *,
    extra_imports: Optional[list[str]] = None,
) -> list[PatchState]:
    raise NotImplementedError('slim removed the body of apply_patches_from_config: it never ran in any recording (see sglang/REMOVED.md)')


# --------------------------------- private ---------------------------------


