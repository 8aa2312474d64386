from transformers.configuration_utils import PretrainedConfig

from sglang.srt.configs.kimi_linear import KimiLinearConfig


class KimiK3Config(PretrainedConfig):
    model_type = "kimi_k3"

