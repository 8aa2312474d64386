import os


def is_hip():
    return os.environ.get("FAKE_PLATFORM") == "hip"


def is_cuda():
    return not is_hip()
