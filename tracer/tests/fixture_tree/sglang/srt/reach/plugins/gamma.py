"""Loaded by the registry scan; only its own import-time code runs (like a model file whose
module body builds helpers): nothing uses it."""
from sglang.srt.reach.base import Base


def _make(n):
    return (n, n)


PAIR = _make(2)


class Gamma(Base):
    def run(self):
        return "gamma"
