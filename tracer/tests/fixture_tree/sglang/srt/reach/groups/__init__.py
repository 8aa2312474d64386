"""Imports its groups by computed names, like sglang/kernels/ops/__init__.py."""
from importlib import import_module

_GROUPS = ("one",)

for _group in _GROUPS:
    import_module(f"{__name__}.{_group}")
