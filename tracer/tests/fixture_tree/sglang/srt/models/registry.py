"""Eagerly imports every model, like upstream's ModelRegistry."""
from sglang.srt.models import deepseek, llama

MODELS = {cls.__name__: cls for cls in (deepseek.DeepseekV3ForCausalLM, llama.LlamaForCausalLM)}


def resolve(name):
    return MODELS[name]
