from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from sglang.srt.layers.attention.base_attn_backend import AttentionBackend

if TYPE_CHECKING:
    from sglang.srt.layers.attention.verify_mask import VerifyMask
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class TboAttnBackend(AttentionBackend):
    def __init__(self, primary: AttentionBackend, children: List[AttentionBackend]):
        super().__init__()
        self.primary = primary
        self.children = children
        # Dispatcher aliases the primary's pool refs so get_attn_backend()
        # reads through TboAttnBackend resolve to the underlying pool.
        self.token_to_kv_pool = primary.token_to_kv_pool
        self.req_to_token_pool = primary.req_to_token_pool

    def init_forward_metadata_out_graph(
        self,
        forward_batch: ForwardBatch,
        in_capture: bool = False,
    ):
        raise NotImplementedError('slim removed the body of TboAttnBackend.init_forward_metadata_out_graph: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata_in_graph(self, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TboAttnBackend.init_forward_metadata_in_graph: it never ran in any recording (see sglang/REMOVED.md)')

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TboAttnBackend.init_forward_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        raise NotImplementedError('slim removed the body of TboAttnBackend.init_cuda_graph_state: it never ran in any recording (see sglang/REMOVED.md)')

    def on_after_cuda_graph_warmup(self):
        raise NotImplementedError('slim removed the body of TboAttnBackend.on_after_cuda_graph_warmup: it never ran in any recording (see sglang/REMOVED.md)')

    def get_cuda_graph_seq_len_fill_value(self):
        raise NotImplementedError('slim removed the body of TboAttnBackend.get_cuda_graph_seq_len_fill_value: it never ran in any recording (see sglang/REMOVED.md)')

    def forward(self, *args, **kwargs):
        return self.primary.forward(*args, **kwargs)

    def forward_extend(self, *args, **kwargs):
        raise NotImplementedError('slim removed the body of TboAttnBackend.forward_extend: it never ran in any recording (see sglang/REMOVED.md)')

    def forward_decode(self, *args, **kwargs):
        raise NotImplementedError('slim removed the body of TboAttnBackend.forward_decode: it never ran in any recording (see sglang/REMOVED.md)')

    def get_indexer_metadata(self, layer_id: int, forward_batch: ForwardBatch):
        raise NotImplementedError('slim removed the body of TboAttnBackend.get_indexer_metadata: it never ran in any recording (see sglang/REMOVED.md)')

    @property
    def verify_mask(self) -> Optional[VerifyMask]:
        # Needs an explicit override: the base declares this as a property, so
        # normal lookup succeeds with None and __getattr__ below never runs.
        return self.primary.verify_mask

    def __getattr__(self, name):
        # Delegate backend-specific attributes/methods not explicitly wrapped
        # above (e.g. DSV4's get_unified_swa_loc / get_swa_out_cache_loc, which
        # the model calls directly via get_attn_backend()) to the primary
        # full-batch backend. Inside TBO the per-child backend is resolved
        # directly from the forward context, so this path only serves the
        # non-overlapped forward (warmup / decode / TBO-ineligible batches).
        # NOTE: __getattr__ runs only when normal lookup fails; guard `primary`
        # to avoid infinite recursion before __init__ sets it.
        if name == "primary":
            raise AttributeError(name)
        return getattr(self.primary, name)


