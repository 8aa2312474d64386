
from sglang.srt.distributed import get_world_group


class PollBasedBarrier:
    pass
