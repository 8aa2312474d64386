from __future__ import annotations



from sglang.srt.utils import is_hip, is_npu

_is_hip = is_hip()
_is_npu = is_npu()


class CompressStatePool:
    pass
