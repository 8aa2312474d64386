from argparse import Namespace
from dataclasses import dataclass
from typing import List, Optional

from transformers import PreTrainedTokenizerBase

from sglang.benchmark.datasets.common import BaseDataset, DatasetRow

LONGBENCH_V2_REPO_ID = "THUDM/LongBench-v2"
LONGBENCH_V2_DEFAULT_OUTPUT_LEN = 10  # answer letter + short explanation


@dataclass
class LongBenchV2Dataset(BaseDataset):
    dataset_path: str
    num_requests: int
    fixed_output_len: Optional[int]
    context_len: Optional[int]

    @classmethod
    def from_args(cls, args: Namespace) -> "LongBenchV2Dataset":
        raise NotImplementedError('slim removed the body of LongBenchV2Dataset.from_args: it never ran in any recording (see sglang/REMOVED.md)')

    def load(
        self, tokenizer: PreTrainedTokenizerBase, model_id=None
    ) -> List[DatasetRow]:
        raise NotImplementedError('slim removed the body of LongBenchV2Dataset.load: it never ran in any recording (see sglang/REMOVED.md)')


