
from transformers.configuration_utils import PretrainedConfig


class Step3p7Config(PretrainedConfig):
    model_type = "step3p7"

