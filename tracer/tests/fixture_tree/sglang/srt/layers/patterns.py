"""SGLang-like patterns for slim's function-level tests (not imported by the traced server)."""
import abc
import json
from dataclasses import dataclass

from sglang.srt.utils import is_hip

_is_hip = is_hip()


@dataclass
class Config:
    size: int = 1

    def describe(self):
        return f"size={self.size}"


class Base(abc.ABC):
    @abc.abstractmethod
    def apply(self, x):
        ...

    def run(self, x):
        return self.apply(x)


class Triton(Base):
    def apply(self, x):
        if _is_hip:
            return -x
        return x + 1

    def unused_helper(self, x):
        y = x * 2
        return json.dumps(y)


class Aiter(Base):
    def apply(self, x):
        z = x - 1
        return z


BACKENDS = {"triton": Triton, "aiter": Aiter}


def called_by_name(x):
    a = x
    b = a + 1
    return b


def dispatch(name, x):
    if name == "never":
        return called_by_name(x)
    return BACKENDS[name]().run(x)
