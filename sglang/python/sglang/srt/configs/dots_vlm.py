from transformers import AutoProcessor, PretrainedConfig

try:
    from transformers import Qwen2_5_VLProcessor
except ImportError:
    raise ImportError(
        "Qwen2_5_VLProcessor can not be found. Please upgrade your transformers version."
    )



class DotsVisionConfig(PretrainedConfig):
    model_type: str = "dots_vit"

class DotsVLMConfig(PretrainedConfig):
    model_type = "dots_vlm"

class DotsVLMProcessor(Qwen2_5_VLProcessor):
    r"""
    Constructs a DotsVLM processor which derives from Qwen2_5_VLProcessor, but overrides the image and video token ids.
    Besides, its tokenizer is a LlamaTokenizerFast instead of Qwen2TokenizerFast.
    [`DotsVLMProcessor`] offers all the functionalities of [`DotsVisionConfig`] and [`LlamaTokenizerFast`]. See the
    [`~DotsVLMProcessor.__call__`] and [`~DotsVLMProcessor.decode`] for more information.
    Args:
        image_processor ([`Qwen2VLImageProcessor`], *optional*):
            The image processor is a required input.
        tokenizer ([`LlamaTokenizerFast`], *optional*):
            The tokenizer is a required input.
        chat_template (`str`, *optional*): A Jinja template which will be used to convert lists of messages
            in a chat into a tokenizable string.
    """

    attributes = ["image_processor", "tokenizer"]

    valid_kwargs = ["chat_template"]

    tokenizer_class = ("LlamaTokenizer", "LlamaTokenizerFast")

AutoProcessor.register(DotsVLMConfig, DotsVLMProcessor)
