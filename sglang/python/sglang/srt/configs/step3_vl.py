
from transformers.configuration_utils import PretrainedConfig


class Step3VLConfig(PretrainedConfig):
    model_type = "step3_vl"

