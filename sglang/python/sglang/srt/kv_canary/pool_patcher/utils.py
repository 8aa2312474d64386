from __future__ import annotations

from typing import Any, Callable

_WRAPPED_MARKER_ATTR = "_kv_canary_wrapped_by"


def wrap_method(
    obj: object,
    method_name: str,
    *,
    wrapper: Callable[..., Any],
) -> None:
    raise NotImplementedError('slim removed the body of wrap_method: it never ran in any recording (see sglang/REMOVED.md)')
