from __future__ import annotations


from sglang.srt.environ import envs


_use_ag_after_qlora = envs.SGLANG_USE_AG_AFTER_QLORA.get()


class DSANPUIndexerMixin:
    pass


