from abc import ABC


from sglang.srt.utils import (
    is_cpu,
    is_npu,
    is_xpu,
    )

_is_cpu = is_cpu()
_is_npu = is_npu()
_is_xpu = is_xpu()


class BaseMultimodalProcessor(ABC):
    models = []
    gpu_image_decode = True  # Enable GPU decoding by default
    prefer_tokenized_input = False
    precompute_hash_before_cpu_transfer = False
    # Set by processors that already build input_ids from the request's own
    # tokens, so the retokenize-avoidance rebuild below has nothing to add.
    preserve_processor_input_ids = False
    auto_mm_processor_worker_num = 1
    auto_mm_io_worker_num = 4
    supports_mm_processor_concurrency = False

