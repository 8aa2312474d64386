from __future__ import annotations


from sglang.srt.layers.attention.base_attn_backend import AttentionBackend



class TboAttnBackend(AttentionBackend):
    pass


