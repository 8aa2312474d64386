# SPDX-License-Identifier: Apache-2.0
# Adapted from https://huggingface.co/moonshotai/Kimi-VL-A3B-Instruct/blob/main/configuration_kimi_vl.py

from transformers.configuration_utils import PretrainedConfig



class KimiVLConfig(PretrainedConfig):
    model_type = "kimi_vl"

