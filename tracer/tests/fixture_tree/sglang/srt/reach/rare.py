"""A feature no recording used: kept code names it on a branch that never ran, nothing here ran."""
import json


def rare_path(data):
    from sglang.srt.reach.lazy import lazy_label  # a module where nothing ran
    return lazy_label(_format(data))


def rare_summary(data):  # only used.helper_elsewhere names it
    return len(data)


def _format(data):  # only rare_path's body names it
    return json.dumps(sorted(data))


class RareOptions:
    def __init__(self):
        self.level = 1

    @property
    def label(self):
        return f"level {self.level}"
