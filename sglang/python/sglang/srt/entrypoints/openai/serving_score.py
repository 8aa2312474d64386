import logging
from typing import Union

from fastapi import Request

from sglang.srt.entrypoints.openai.protocol import (
    ErrorResponse,
    ScoringRequest,
    ScoringResponse,
    )
from sglang.srt.entrypoints.openai.serving_base import OpenAIServingBase

logger = logging.getLogger(__name__)


class OpenAIServingScore(OpenAIServingBase):
    """Handler for /v1/score requests"""

    # NOTE: /v1/rerank is not an official OpenAI endpoint. This module may be moved
    # to another module in the future.

    def _request_id_prefix(self) -> str:
        raise NotImplementedError('slim removed the body of OpenAIServingScore._request_id_prefix: it never ran in any recording (see sglang/REMOVED.md)')

    def _convert_to_internal_request(
        self,
        request: ScoringRequest,
        raw_request: Request = None,
    ) -> tuple[ScoringRequest, ScoringRequest]:
        raise NotImplementedError('slim removed the body of OpenAIServingScore._convert_to_internal_request: it never ran in any recording (see sglang/REMOVED.md)')

    async def _handle_non_streaming_request(
        self,
        adapted_request: ScoringRequest,
        request: ScoringRequest,
        raw_request: Request,
    ) -> Union[ScoringResponse, ErrorResponse]:
        raise NotImplementedError('slim removed the body of OpenAIServingScore._handle_non_streaming_request: it never ran in any recording (see sglang/REMOVED.md)')
