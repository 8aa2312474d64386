
from transformers import AutoProcessor, Qwen2_5_VLProcessor
from transformers.models.qwen2 import Qwen2Config



class DotsOCRConfig(Qwen2Config):
    model_type = "dots_ocr"

class DotsVLProcessor(Qwen2_5_VLProcessor):
    pass


AutoProcessor.register(DotsOCRConfig, DotsVLProcessor)
