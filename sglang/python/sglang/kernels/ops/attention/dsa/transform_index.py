from typing import Optional

import torch


def transform_index_page_table_prefill(**kwargs):
    raise NotImplementedError('slim removed the body of transform_index_page_table_prefill: it never ran in any recording (see sglang/REMOVED.md)')


def transform_index_page_table_decode(**kwargs):
    raise NotImplementedError('slim removed the body of transform_index_page_table_decode: it never ran in any recording (see sglang/REMOVED.md)')


def transform_index_page_table_decode_fast(
    page_table: torch.Tensor,
    topk_indices: torch.Tensor,
    result: Optional[torch.Tensor] = None,
    page_size: int = 1,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of transform_index_page_table_decode_fast: it never ran in any recording (see sglang/REMOVED.md)')


def transform_index_page_table_decode_ref(
    page_table: torch.Tensor,
    topk_indices: torch.Tensor,
    result: Optional[torch.Tensor] = None,
    page_size: int = 1,
) -> torch.Tensor:
    raise NotImplementedError('slim removed the body of transform_index_page_table_decode_ref: it never ran in any recording (see sglang/REMOVED.md)')


if __name__ == "__main__":
    bs, topk, max_seqlen = 10, 2048, 3000
    page_table = torch.randint(0, 100, (bs, max_seqlen), device="cuda")
    topk_indices = torch.full((bs, topk), -1, device="cuda")
    topk_indices[:, :1600] = torch.arange(1600).unsqueeze(0).repeat(bs, 1)
    ref_result = transform_index_page_table_decode_ref(page_table, topk_indices)
    result = transform_index_page_table_decode_fast(page_table, topk_indices)
    assert torch.all(result == ref_result)
    print("Passed")
