# TODO: also move pad_input_ids into this module
import logging

from sglang.srt.multimodal.processors.base_processor import BaseMultimodalProcessor
from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)

PROCESSOR_MAPPING = {}


def import_processors(package_name: str, overwrite: bool = False):
    raise NotImplementedError('slim removed the body of import_processors: it never ran in any recording (see sglang/REMOVED.md)')


def get_mm_processor(
    hf_config,
    server_args: ServerArgs,
    processor,
    transport_mode,
    model_config=None,
    **kwargs,
) -> BaseMultimodalProcessor:
    raise NotImplementedError('slim removed the body of get_mm_processor: it never ran in any recording (see sglang/REMOVED.md)')
