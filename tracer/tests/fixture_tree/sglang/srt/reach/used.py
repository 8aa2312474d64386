def helper():
    return 1


def helper_unused():
    return 2


def helper_on_error():
    """Named only on a branch no recording took, in a module where something ran."""
    return 3
