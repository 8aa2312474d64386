from sglang.srt.debug_utils.source_patcher.code_patcher import (
    apply_patches_from_config,
    )
from sglang.srt.debug_utils.source_patcher.types import (
    PatchState,
)
