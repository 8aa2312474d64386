from argparse import Namespace
from dataclasses import dataclass
from typing import List


from sglang.benchmark.datasets.common import (
    BaseDataset,
    DatasetRow,
    )


@dataclass
class ImageDataset(BaseDataset):
    num_requests: int
    image_count: int
    input_len: int
    output_len: int
    range_ratio: float
    image_content: str
    image_format: str
    image_resolution: str
    backend: str
    random_image_count: bool
    seed: int

    @classmethod
    def from_args(cls, args: Namespace) -> "ImageDataset":
        raise NotImplementedError('slim removed the body of ImageDataset.from_args: it never ran in any recording (see sglang/REMOVED.md)')

    def load(self, tokenizer=None, model_id=None) -> List[DatasetRow]:
        raise NotImplementedError('slim removed the body of ImageDataset.load: it never ran in any recording (see sglang/REMOVED.md)')


