from sglang.srt.reach.rare import rare_path
from sglang.srt.reach.used import helper_elsewhere


def fn():
    return "lazy"


def lazy_label(text):  # only rare_path names it
    return f"lazy {text}"


def on_other_hardware(data):  # what a policy-kept copy of this module would call
    return rare_path(data), helper_elsewhere(data)
