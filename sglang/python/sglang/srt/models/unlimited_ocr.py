"""Standalone UNLIMITED-OCR model (SAM + CLIP vision encoders, Deepseek backbone)."""

import logging
from typing import Iterable, List, Optional, Tuple, TypeAlias, Union

import torch
from torch import Tensor, nn

from sglang.srt.configs.unlimited_ocr import UnlimitedVLConfig
from sglang.srt.layers.quantization import QuantizationConfig
from sglang.srt.managers.mm_utils import (
    MultiModalityDataPaddingPatternMultimodalTokens,
    general_mm_embed_routine,
)
from sglang.srt.managers.schedule_batch import MultimodalDataItem, MultimodalInputs
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_loader.weight_utils import default_weight_loader
from sglang.srt.models.deepseek import DeepseekForCausalLM
from sglang.srt.models.deepseek_ocr import (
    MlpProjector,
    build_clip_l,
    build_sam_vit_b,
    merge_multimodal_embeddings,
)
from sglang.srt.models.transformers import maybe_prefix
from sglang.srt.utils import cpu_has_amx_support, is_cpu

_is_cpu_amx_available = cpu_has_amx_support()
_is_cpu = is_cpu()

NestedTensors: TypeAlias = Union[
    list["NestedTensors"],
    list["torch.Tensor"],
    "torch.Tensor",
    tuple["torch.Tensor", ...],
]

MultiModalEmbeddings: TypeAlias = list[Tensor] | Tensor | tuple[Tensor, ...]

logger = logging.getLogger(__name__)


class UnlimitedOCRForCausalLM(nn.Module):
    """Standalone UNLIMITED-OCR model (SAM + CLIP ViT) with prefill-aware SWA."""

    def __init__(
        self,
        *,
        config: UnlimitedVLConfig,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
    ):
        """Initialize UnlimitedOCRForCausalLM with vision encoders, projector, and LM."""
        super().__init__()

        self.config = config
        self.vision_config = config.vision_config
        self.projector_config = config.projector_config
        self.text_config = config.text_config

        n_embed = getattr(self.projector_config, "n_embed", 1280)

        self.tile_tag = config.tile_tag
        self.global_view_pos = config.global_view_pos

        embed_std = 1 / torch.sqrt(torch.tensor(n_embed, dtype=torch.float32))
        if self.tile_tag == "2D":
            self.view_seperator = nn.Parameter(torch.randn(n_embed) * embed_std)
            self.image_newline = nn.Parameter(torch.randn(n_embed) * embed_std)
        else:
            raise ValueError(
                f"Only 2D tile_tag is supported currently, got: {self.tile_tag}"
            )

        self.model = DeepseekForCausalLM(
            config=config.text_config,
            quant_config=quant_config,
            prefix=maybe_prefix(prefix, "language"),
        )

        self.sam_model = build_sam_vit_b()
        self.vision_model = build_clip_l()

        self.projector = MlpProjector(
            projector_type=self.projector_config.projector_type,
            input_dim=self.projector_config.input_dim,
            n_embed=n_embed,
            depth=self.projector_config.depth,
            mlp_ratio=self.projector_config.mlp_ratio,
            downsample_ratio=self.projector_config.downsample_ratio,
        )

        self.image_token_id = None

    def get_attention_sliding_window_size(self) -> Optional[int]:
        """Return the sliding window size from the model config, or None."""
        return getattr(self.config, "sliding_window_size", None)

    def is_prefill_aware_swa(self) -> bool:
        """Prefill tokens are always retained in KV cache during decode."""
        return True







    def _process_image_input(self, mm_items: List[MultimodalDataItem]) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")



    def get_input_embeddings(
        self,
        input_ids: torch.Tensor,
        multimodal_embeddings: Optional[MultiModalEmbeddings] = None,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    def pad_input_ids(self, input_ids: List[int], mm_inputs: MultimodalInputs):
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_image_feature(self, items: List[MultimodalDataItem]) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
        **kwargs: object,
    ):
        """Run the full multimodal forward pass (embed, encode, decode)."""
        hidden_states = general_mm_embed_routine(
            input_ids=input_ids,
            forward_batch=forward_batch,
            language_model=self.model,
            multimodal_model=self,
            positions=positions,
        )
        return hidden_states

    def load_weights(self, weights: Iterable[Tuple[str, torch.Tensor]]):
        raise NotImplementedError("removed by slim: never run in any recording")

    def post_load_weights(self):
        raise NotImplementedError("removed by slim: never run in any recording")


EntryClass = [UnlimitedOCRForCausalLM]
