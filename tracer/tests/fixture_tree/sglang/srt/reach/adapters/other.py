from sglang.srt.reach.adapters.base import register


def unrelated():
    return 0


@register("other")
class OtherAdapter:
    pass
