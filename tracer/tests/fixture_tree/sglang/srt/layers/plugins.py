"""Abstract-method implementations and platform branches for slim's function-level tests
(not imported by the traced server). Shaped like sglang/srt/debug_utils/dumper.py."""
import abc

from sglang.srt.utils import is_hip

_is_hip = is_hip()


class Plugin(abc.ABC):
    @abc.abstractmethod
    def collect_parallel_info(self):
        ...

    @abc.abstractmethod
    def convert_value(self, value):
        ...


class SGLangPlugin(Plugin):
    def collect_parallel_info(self):
        info = {"tp_rank": 0}
        return info

    def convert_value(self, value):
        out = float(value)
        return out

    def unused_extra(self):
        return 1


def make_plugin():
    return SGLangPlugin()


def dump(plugin, value):
    info = plugin.collect_parallel_info()
    return info, plugin.convert_value(value)


def hip_convert(x):
    y = -x
    return y


def strict_convert(x):
    y = int(x)
    return y


def convert(x, strict=False):
    if _is_hip:
        return hip_convert(x)
    if not _is_hip:
        if strict:
            return strict_convert(x)
    return x
