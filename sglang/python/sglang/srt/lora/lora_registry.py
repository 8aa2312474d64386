# Copyright 2023-2024 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================


from collections import OrderedDict
from typing import Dict, List, Optional, Union
from uuid import uuid4

import msgspec
from msgspec.structs import fields

from sglang.srt.utils import ConcurrentCounter
from sglang.srt.utils.aio_rwlock import RWLock


class LoRARef(msgspec.Struct, frozen=True, array_like=True):
    """
    Reference record for a LoRA model.

    This object guarantees a unique ``lora_id`` and may include ``lora_name``, ``lora_path``, and ``pinned``.
    The ID eliminates conflicts from reused LoRA names or paths and can be used to generate deterministic cache
    keys (e.g., radix cache).
    """

    lora_id: str = msgspec.field(default_factory=lambda: uuid4().hex)
    lora_name: Optional[str] = None
    lora_path: Optional[str] = None
    pinned: Optional[bool] = None

    def __post_init__(self):
        if self.lora_id is None:
            raise ValueError("lora_id cannot be None")

    @staticmethod
    def deterministic_id(lora_name: str, lora_path: str) -> str:
        raise NotImplementedError('slim removed the body of LoRARef.deterministic_id: it never ran in any recording (see sglang/REMOVED.md)')

    def __str__(self) -> str:
        parts = [
            f"{f.name}={value}"
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None
        ]
        return f"{self.__class__.__name__}({', '.join(parts)})"


class LoRARegistry:
    """
    The central registry to keep track of available LoRA adapters and ongoing LoRA requests.

    The `LoRARegistry` resides in the tokenizer manager process and acts as the single source of truth for all
    available LoRA adapters. It supports concurrent inference and dynamic adapter updates through a two-phase
    update / eventual consistency model between the tokenizer manager process and the scheduler processes.
    """

    def __init__(self, lora_paths: Optional[List[LoRARef]] = None):
        assert lora_paths is None or all(
            isinstance(lora, LoRARef) for lora in lora_paths
        ), (
            "server_args.lora_paths should have been normalized to LoRARef objects during server initialization. "
            "Please file an issue if you see this error."
        )

        # A read-write lock to ensure adapters loading / unloading operations are exclusive.
        # Please note that the counter increment/decrement operations are not synchronized through this
        # lock, as they are designed to be non-blocking and can be performed concurrently.
        self._registry_lock = RWLock()
        # An ordered dictionary to hold LoRARef objects, mapping from LoRA name to LoRARef.
        # The LoRARefs are stored in LRU order, such that LoRA adapters that have been
        # most recently used are stored at the end. Note that lookups count for accesses.
        # Ties are broken arbitrarily.
        self._registry: OrderedDict[str, LoRARef] = OrderedDict()
        # Counters for ongoing requests, mapping from LoRA ID to ConcurrentCounter.
        self._counters: Dict[str, ConcurrentCounter] = {}

        # Initialize the registry with provided LoRA paths, if present.
        if lora_paths:
            for lora_ref in lora_paths:
                self._register_adapter(lora_ref)

    async def register(self, lora_ref: LoRARef):
        raise NotImplementedError('slim removed the body of LoRARegistry.register: it never ran in any recording (see sglang/REMOVED.md)')

    async def unregister(self, lora_name: str) -> str:
        raise NotImplementedError('slim removed the body of LoRARegistry.unregister: it never ran in any recording (see sglang/REMOVED.md)')

    async def acquire(self, lora_name: Union[str, List[str]]) -> Union[str, List[str]]:
        raise NotImplementedError('slim removed the body of LoRARegistry.acquire: it never ran in any recording (see sglang/REMOVED.md)')

    async def release(self, lora_id: Union[str, List[str]]):
        raise NotImplementedError('slim removed the body of LoRARegistry.release: it never ran in any recording (see sglang/REMOVED.md)')

    async def wait_for_unload(self, lora_id: str):
        raise NotImplementedError('slim removed the body of LoRARegistry.wait_for_unload: it never ran in any recording (see sglang/REMOVED.md)')

    async def get_unregistered_loras(self, lora_name: set[str]):
        raise NotImplementedError('slim removed the body of LoRARegistry.get_unregistered_loras: it never ran in any recording (see sglang/REMOVED.md)')

    async def lru_lora_name(self, exclude_pinned=False):
        raise NotImplementedError('slim removed the body of LoRARegistry.lru_lora_name: it never ran in any recording (see sglang/REMOVED.md)')

    def _register_adapter(self, lora_ref: LoRARef):
        raise NotImplementedError('slim removed the body of LoRARegistry._register_adapter: it never ran in any recording (see sglang/REMOVED.md)')

    @property
    def num_registered_loras(self) -> int:
        """
        Returns the total number of LoRA adapters currently registered.
        """
        return len(self._registry)

    def get_all_adapters(self) -> Dict[str, LoRARef]:
        raise NotImplementedError('slim removed the body of LoRARegistry.get_all_adapters: it never ran in any recording (see sglang/REMOVED.md)')
