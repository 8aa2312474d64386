# Adapted from:
# https://github.com/deepseek-ai/Janus/tree/main/janus/models


from transformers import (
    BaseImageProcessor,
    LlamaConfig,
    LlamaTokenizerFast,
    PretrainedConfig,
    ProcessorMixin,
)

from sglang.srt.configs.utils import register_image_processor, register_processor


class VisionConfig(PretrainedConfig):
    model_type = "vision"
    cls: str = ""
    params = {}

class GenAlignerConfig(PretrainedConfig):
    model_type = "gen_aligner"
    cls: str = ""
    params = {}

class GenHeadConfig(PretrainedConfig):
    model_type = "gen_head"
    cls: str = ""
    params = {}

class AlignerConfig(PretrainedConfig):
    model_type = "aligner"
    cls: str = ""
    params = {}

class GenVisionConfig(PretrainedConfig):
    model_type = "gen_vision"
    cls: str = ""
    params = {}

class MultiModalityConfig(PretrainedConfig):
    model_type = "multi_modality"
    vision_config: VisionConfig = None
    aligner_config: AlignerConfig = None

    gen_vision_config: GenVisionConfig = None
    gen_aligner_config: GenAlignerConfig = None
    gen_head_config: GenHeadConfig = None

    language_config: LlamaConfig = None

class VLMImageProcessor(BaseImageProcessor):
    model_input_names = ["pixel_values"]

# FIXME: had to place Official Processor here, since image_processor module would not be imported in all threads,
# hence AutoProcessor registration would not be affective in some cases
class VLChatProcessor(ProcessorMixin):
    image_processor_class = "AutoImageProcessor"
    tokenizer_class = ("LlamaTokenizer", "LlamaTokenizerFast")

    attributes = ["image_processor", "tokenizer"]

register_processor(MultiModalityConfig, VLChatProcessor)
register_image_processor(MultiModalityConfig, VLMImageProcessor)
