from argparse import Namespace
from dataclasses import dataclass
from typing import List, Optional

from transformers import PreTrainedTokenizerBase

from sglang.benchmark.datasets.common import (
    BaseDataset,
    DatasetRow,
)


@dataclass
class ShareGPTDataset(BaseDataset):
    dataset_path: str
    num_requests: int
    fixed_output_len: Optional[int]
    context_len: Optional[int]
    prompt_suffix: str
    apply_chat_template: bool

    @classmethod
    def from_args(cls, args: Namespace) -> "ShareGPTDataset":
        raise NotImplementedError('slim removed the body of ShareGPTDataset.from_args: it never ran in any recording (see sglang/REMOVED.md)')

    def load(
        self, tokenizer: PreTrainedTokenizerBase, model_id=None
    ) -> List[DatasetRow]:
        raise NotImplementedError('slim removed the body of ShareGPTDataset.load: it never ran in any recording (see sglang/REMOVED.md)')


