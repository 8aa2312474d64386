from sglang.srt.reach.adapters.base import register


@register("default")
class DefaultAdapter:
    def describe(self):
        return "default"
