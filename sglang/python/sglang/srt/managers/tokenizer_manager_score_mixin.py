import logging


from sglang.srt.managers.embed_types import PositionalEmbeds
from sglang.srt.managers.io_struct import EmbeddingReqInput, GenerateReqInput
from sglang.srt.server_args import MIS_DELIMITER_TOKEN_ID

logger = logging.getLogger(__name__)


class TokenizerManagerScoreMixin:
    # ------------------------------------------------------------------
    # Embed override position resolution
    # ------------------------------------------------------------------

    # ------------------------------------------------------------------
    # Input preparation (tokenization + input_ids construction)
    # ------------------------------------------------------------------

    # ------------------------------------------------------------------
    # Main entry point
    # ------------------------------------------------------------------

    pass
