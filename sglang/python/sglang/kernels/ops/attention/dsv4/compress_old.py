from __future__ import annotations

from typing import Literal, NamedTuple, Optional, Union

import torch





class CompressorPrefillPlan(NamedTuple):
    compress_ratio: int
    compress_plan: torch.Tensor
    write_plan: torch.Tensor

    def copy_(self, other: CompressorPrefillPlan) -> None:
        raise NotImplementedError('slim removed the body of CompressorPrefillPlan.copy_: it never ran in any recording (see sglang/REMOVED.md)')

    @staticmethod
    def generate(
        compress_ratio: Literal[4, 128],
        num_q_tokens: int,
        seq_lens: torch.Tensor,
        extend_lens: torch.Tensor,
        device: torch.device,
        use_cuda_graph: bool = False,
    ) -> CompressorPrefillPlan:
        raise NotImplementedError('slim removed the body of CompressorPrefillPlan.generate: it never ran in any recording (see sglang/REMOVED.md)')

    @property
    def is_decode(self) -> bool:
        return False


class CompressorDecodePlan(NamedTuple):
    compress_ratio: int
    seq_lens: torch.Tensor

    def copy_(self, other: CompressorDecodePlan) -> None:
        raise NotImplementedError('slim removed the body of CompressorDecodePlan.copy_: it never ran in any recording (see sglang/REMOVED.md)')

    @property
    def is_decode(self) -> bool:
        return True


def compress_plan(
    compress_ratio: Literal[4, 128],
    num_q_tokens: int,
    seq_lens: torch.Tensor,
    extend_lens: Optional[torch.Tensor],
    device: torch.device,
) -> Union[CompressorDecodePlan, CompressorPrefillPlan]:
    raise NotImplementedError('slim removed the body of compress_plan: it never ran in any recording (see sglang/REMOVED.md)')


