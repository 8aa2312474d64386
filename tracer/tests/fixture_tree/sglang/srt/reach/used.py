def helper():
    return 1


def helper_unused():
    return 2


def helper_on_error():
    """Named only on a branch no recording took, in a module where something ran."""
    return 3


def helper_elsewhere(data):
    """Never ran, in a module where something ran; only policy-kept code calls it."""
    from sglang.srt.reach.rare import rare_summary
    return rare_summary(data)
