from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from fastapi import Request
from fastapi.responses import ORJSONResponse

from sglang.srt.entrypoints.openai.protocol import (
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    )
from sglang.srt.entrypoints.openai.serving_base import OpenAIServingBase
from sglang.srt.managers.io_struct import EmbeddingReqInput

if TYPE_CHECKING:
    from sglang.srt.managers.tokenizer_manager import TokenizerManager
    from sglang.srt.parser.template_manager import TemplateManager


class OpenAIServingEmbedding(OpenAIServingBase):
    """Handler for v1/embeddings requests"""

    def __init__(
        self,
        tokenizer_manager: TokenizerManager,
        template_manager: TemplateManager,
    ):
        super().__init__(tokenizer_manager)
        self.template_manager = template_manager

    def _request_id_prefix(self) -> str:
        raise NotImplementedError('slim removed the body of OpenAIServingEmbedding._request_id_prefix: it never ran in any recording (see sglang/REMOVED.md)')

    def _validate_request(self, request: EmbeddingRequest) -> Optional[str]:
        raise NotImplementedError('slim removed the body of OpenAIServingEmbedding._validate_request: it never ran in any recording (see sglang/REMOVED.md)')

    def _convert_to_internal_request(
        self,
        request: EmbeddingRequest,
        raw_request: Request = None,
    ) -> tuple[EmbeddingReqInput, EmbeddingRequest]:
        raise NotImplementedError('slim removed the body of OpenAIServingEmbedding._convert_to_internal_request: it never ran in any recording (see sglang/REMOVED.md)')

    async def _handle_non_streaming_request(
        self,
        adapted_request: EmbeddingReqInput,
        request: EmbeddingRequest,
        raw_request: Request,
    ) -> Union[EmbeddingResponse, ErrorResponse, ORJSONResponse]:
        raise NotImplementedError('slim removed the body of OpenAIServingEmbedding._handle_non_streaming_request: it never ran in any recording (see sglang/REMOVED.md)')

