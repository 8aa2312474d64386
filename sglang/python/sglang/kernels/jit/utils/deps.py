"""Header-only dependency registration (flashinfer, cutlass, mathdx, ...)."""

from __future__ import annotations

from typing import Callable, Dict, List


REGISTERED_DEPENDENCIES: Dict[str, Callable[[], List[str]]] = {}


def register_dependency(name: str):
    def decorator(f: Callable[[], List[str]]) -> Callable[[], List[str]]:
        if name in REGISTERED_DEPENDENCIES:
            raise ValueError(f"Dependency {name} already registered")
        REGISTERED_DEPENDENCIES[name] = f
        return f

    return decorator


