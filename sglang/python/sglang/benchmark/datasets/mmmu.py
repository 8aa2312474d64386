from argparse import Namespace
from dataclasses import dataclass
from typing import List, Optional


from sglang.benchmark.datasets.common import BaseDataset, DatasetRow


@dataclass
class MMMUDataset(BaseDataset):
    num_requests: int
    backend: str
    fixed_output_len: Optional[int]

    @classmethod
    def from_args(cls, args: Namespace) -> "MMMUDataset":
        raise NotImplementedError('slim removed the body of MMMUDataset.from_args: it never ran in any recording (see sglang/REMOVED.md)')

    def load(self, tokenizer=None, model_id=None) -> List[DatasetRow]:
        raise NotImplementedError('slim removed the body of MMMUDataset.load: it never ran in any recording (see sglang/REMOVED.md)')


