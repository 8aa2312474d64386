import concurrent.futures
import copy
import threading
from typing import Any, TypeVar

T = TypeVar("T")


class _WorkerState(threading.local):
    def __init__(self):
        self.processor = None


class MultimodalProcessorExecutor:
    """Run processor calls on isolated, thread-local processor clones."""

    def __init__(self, processor: Any, max_workers: int):
        self._processor = processor
        self._processor_clones = [copy.deepcopy(processor) for _ in range(max_workers)]
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers,
            thread_name_prefix="sglang-mm-processor",
        )
        self._worker_state = _WorkerState()
        self._clone_lock = threading.Lock()



