# SPDX-License-Identifier: Apache-2.0

# inspired by LMCache
from typing import Tuple

import torch

from sglang.srt.connector.serde.safe_serde import SafeDeserializer, SafeSerializer
from sglang.srt.connector.serde.serde import Deserializer, Serializer


def create_serde(serde_type: str) -> Tuple[Serializer, Deserializer]:
    raise NotImplementedError("removed by slim: never run in any recording")


__all__ = [
    "Serializer",
    "Deserializer",
    "SafeSerializer",
    "SafeDeserializer",
    "create_serde",
]
