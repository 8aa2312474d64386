
from transformers import PretrainedConfig


class AfmoeConfig(PretrainedConfig):
    model_type = "afmoe"

