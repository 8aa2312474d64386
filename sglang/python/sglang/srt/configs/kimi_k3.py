from transformers.configuration_utils import PretrainedConfig



class KimiK3Config(PretrainedConfig):
    model_type = "kimi_k3"

