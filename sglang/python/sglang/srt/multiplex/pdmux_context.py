
import torch

STREAM_GROUPS = []
SM_COUNTS = []
SM_GROUP_NUM = 8  # Default number of SM groups
CURRENT_STREAM_IDX = 0
CURRENT_STREAM_GROUP = None


def get_stream_groups() -> list[tuple[torch.cuda.Stream, torch.cuda.Stream]]:
    raise NotImplementedError('slim removed the body of get_stream_groups: it never ran in any recording (see sglang/REMOVED.md)')


def get_current_stream_idx() -> int:
    raise NotImplementedError('slim removed the body of get_current_stream_idx: it never ran in any recording (see sglang/REMOVED.md)')
