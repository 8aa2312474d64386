import torch.distributed as dist
from torch.distributed import ProcessGroup

from sglang.srt.utils import is_npu

_is_npu = is_npu()



class NpuCommunicator:

    def __init__(self, group: ProcessGroup):
        self.disabled = True
        return
        self.disabled = False
        self.group = group
        self.world_size = dist.get_world_size(self.group)

