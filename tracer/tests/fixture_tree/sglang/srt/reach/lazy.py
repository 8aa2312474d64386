from sglang.srt.reach.rare import rare_path
from sglang.srt.reach.used import helper_elsewhere
from sglang.srt.reach.adapters.base import register


def fn():
    return "lazy"


def lazy_label(text):  # only rare_path names it
    return f"lazy {text}"


def on_other_hardware(data):  # what a policy-kept copy of this module would call
    return rare_path(data), helper_elsewhere(data)


@register("lazy")
class LazyAdapter:  # registered, named by nothing: a lookup by key may take it
    pass
