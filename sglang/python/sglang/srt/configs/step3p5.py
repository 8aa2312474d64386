
from transformers.configuration_utils import PretrainedConfig


class Step3p5Config(PretrainedConfig):
    model_type = "step3p5"
    architectures = ["Step3p5ForCausalLM"]

