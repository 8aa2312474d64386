
from transformers.configuration_utils import PretrainedConfig
from transformers.models.siglip import SiglipVisionConfig

from sglang.srt.configs.jet_nemotron import JetNemotronConfig


class JetVLMConfig(PretrainedConfig):
    model_type = "jet_vlm"
    sub_configs = {
        "text_config": JetNemotronConfig,
        "vision_config": SiglipVisionConfig,
    }
    _auto_class = "AutoConfig"

