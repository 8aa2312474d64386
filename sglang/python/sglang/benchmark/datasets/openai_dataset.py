from argparse import Namespace
from dataclasses import dataclass
from typing import List, Optional

from transformers import PreTrainedTokenizerBase

from sglang.benchmark.datasets.common import BaseDataset, DatasetRow


@dataclass
class OpenAIDataset(BaseDataset):
    dataset_path: str
    num_requests: int
    fixed_output_len: Optional[int]

    @classmethod
    def from_args(cls, args: Namespace) -> "OpenAIDataset":
        raise NotImplementedError('slim removed the body of OpenAIDataset.from_args: it never ran in any recording (see sglang/REMOVED.md)')

    def load(
        self, tokenizer: PreTrainedTokenizerBase, model_id=None
    ) -> List[DatasetRow]:
        raise NotImplementedError('slim removed the body of OpenAIDataset.load: it never ran in any recording (see sglang/REMOVED.md)')


