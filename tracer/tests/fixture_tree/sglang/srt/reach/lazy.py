from sglang.srt.reach.rare import rare_path


def fn():
    return "lazy"


def on_other_hardware(data):  # what a policy-kept copy of this module would call
    return rare_path(data)
