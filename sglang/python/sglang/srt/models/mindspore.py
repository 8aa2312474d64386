# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the SGLang project
from __future__ import annotations

import logging
from typing import Any, Iterable, List, Optional, Tuple

import torch

from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.quantization.base_config import QuantizationConfig
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.forward_context import (
    get_req_to_token_pool,
    get_token_to_kv_pool,
)
from sglang.srt.models.registry import import_model_classes
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import is_npu

_is_npu = is_npu()


logger = logging.getLogger(__name__)


def _get_arch_from_config(config):
    raise NotImplementedError("removed by slim: never run in any recording")


def tensor_torch2ms(x: torch.Tensor):
    raise NotImplementedError("removed by slim: never run in any recording")


def tensor_ms2torch(x: ms.Tensor):
    raise NotImplementedError("removed by slim: never run in any recording")


# Adapt from: https://gitee.com/mindspore/vllm-mindspore/blob/master/vllm_mindspore/model_executor/models/attention_mask.py
class LowerTriangularMask:
    r"""
    Provide Infer model attention mask.
    Args:
        dtype (ms dtype): The compute type of Infer model.
        max_model_len (int): The max model length of Infer model.
    """

    def __init__(self, dtype, max_model_len, decode_mask_coeff=-10000.0):
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.cached_mask_len = 8 * 1024
        self.decode_mask_coeff = decode_mask_coeff

        prefill_mask_coeff = 1.0 if self.dtype == ms.bfloat16 else -10000.0
        self.prefill_mask = Tensor(
            np.triu(np.ones(shape=(128, 128), dtype=np.float16), k=1)
            * prefill_mask_coeff,
            dtype=self.dtype,
        )

        self.hard_mask = mint.zeros((1, 1), dtype=dtype)
        self.decode_mask = (
            Tensor(
                np.triu(
                    np.ones(
                        shape=(self.cached_mask_len, self.cached_mask_len),
                        dtype=np.int8,
                    ),
                    k=1,
                ),
                dtype=self.dtype,
            )
            * self.decode_mask_coeff
        )




class MindSporeForCausalLM(torch.nn.Module):
    def __init__(
        self,
        config: Any,
        quant_config: Optional[QuantizationConfig] = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.config = config

        ms.set_context(graph_kernel_flags="--disable_pass=gather_pre_rms_norm_fusion")
        ms.set_kernel_launch_capture(False)

        logger.info(
            "MindSporeForCausalLM tp size %d tp rank %d",
            get_parallel().tp_size,
            get_parallel().tp_rank,
        )
        if get_parallel().tp_size not in (1, 2, 4, 8):
            # MatMulAllReduce only support tp size in (1, 2, 4, 8)
            ms.set_context(graph_kernel_flags="--disable_pass=MatMulAllReduce")

        arch = self.get_arch(self.config)
        self.model = arch(config=config, quant_config=quant_config)

        self.causal_mask = LowerTriangularMask(
            self.config.param_dtype, self.config.max_position_embeddings
        )
        self.key_cache = []
        self.value_cache = []

    @property
    def hot_token_id(self):
        if hasattr(self.model, "hot_token_id"):
            return tensor_ms2torch(self.model.hot_token_id)
        return None

    def get_arch(self, config):
        return _get_arch_from_config(config)

    @property
    def use_mla(self):
        return self.config.architectures[0] in ("DeepseekV3ForCausalLM")

    def load_weights(self, weights: Iterable[Tuple[str, torch.Tensor]]):
        raise NotImplementedError("removed by slim: never run in any recording")

    def get_kvcache(self, forward_batch: ForwardBatch):
        raise NotImplementedError("removed by slim: never run in any recording")


    def prepare_inputs(self, input_ids, positions, forward_batch):
        raise NotImplementedError("removed by slim: never run in any recording")

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        forward_batch: ForwardBatch,
    ) -> ms.Tensor:
        # prepare base inputs
        model_inputs = self.prepare_inputs(input_ids, positions, forward_batch)
        # prepare model inputs
        model_inputs = self.model.prepare_inputs(forward_batch, model_inputs)

        # Used by speculative decoding (EAGLE)
        if self.model.capture_aux_hidden_states:
            logits, hidden_states = self.model(**model_inputs)
        else:
            logits = self.model(**model_inputs)
            hidden_states = None

        logits_result = LogitsProcessorOutput(
            next_token_logits=tensor_ms2torch(logits),
            hidden_states=tensor_ms2torch(hidden_states),
        )
        return logits_result

    @classmethod
    def get_model_config_for_expert_location(cls, config):
        raise NotImplementedError("removed by slim: never run in any recording")

    # The following methods are used for speculative decoding
    def get_embed_and_head(self):
        embed, head = self.model.get_embed_and_head()
        return tensor_ms2torch(embed), tensor_ms2torch(head)

    def set_embed_and_head(self, embed, head):
        self.model.set_embed_and_head(tensor_torch2ms(embed), tensor_torch2ms(head))


    def set_embed(self, embed):
        self.model.set_embed(tensor_torch2ms(embed))

    def set_eagle3_layers_to_capture(self, layer_ids: Optional[List[int]] = None):
        self.model.set_eagle3_layers_to_capture(layer_ids)


EntryClass = [MindSporeForCausalLM]
