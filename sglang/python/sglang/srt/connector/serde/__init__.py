# SPDX-License-Identifier: Apache-2.0

# inspired by LMCache
from typing import Tuple

import torch

from sglang.srt.connector.serde.serde import Deserializer, Serializer


def create_serde(serde_type: str) -> Tuple[Serializer, Deserializer]:
    raise NotImplementedError('slim removed the body of create_serde: it never ran in any recording (see sglang/REMOVED.md)')


__all__ = [
    "Serializer",
    "Deserializer",
    "create_serde",
]
