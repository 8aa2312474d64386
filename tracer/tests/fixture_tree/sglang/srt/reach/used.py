def helper():
    return 1


def helper_unused():
    return 2
