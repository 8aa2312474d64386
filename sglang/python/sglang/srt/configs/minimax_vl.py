# SPDX-License-Identifier: Apache-2.0


from transformers.configuration_utils import PretrainedConfig


class MiniMaxVLBaseConfig(PretrainedConfig):
    pass


class MiniMaxM3VLConfig(MiniMaxVLBaseConfig):
    model_type = "minimax_m3_vl"
