# copy from https://huggingface.co/OpenGVLab/InternVL3-1B

from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)




def find_closest_aspect_ratio(aspect_ratio, target_ratios, width, height, image_size):
    raise NotImplementedError("removed by slim: never run in any recording")


def dynamic_preprocess(
    image: Image.Image,
    *,
    min_num: int,
    max_num: int,
    image_size: int,
    use_thumbnail: bool,
) -> list[Image.Image]:
    raise NotImplementedError("removed by slim: never run in any recording")














