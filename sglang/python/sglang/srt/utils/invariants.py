"""Value/index validity checks -- the invariant-check model.

Two layers per check:
  * data layer (sanitize / containment): unconditional, branchless, ~free.
    May live in `recover` here or inside the kernel (then `recover=None`).
  * signal layer (detect + log/crash): gated by SGLANG_INVARIANT_CHECK
    (off / warn / strict).

A `Bucket` (blast radius x recoverability) and the level decide whether a hit
crashes, logs, or is silent. Detection is async (no GPU-CPU sync): crashes via
torch's async assert, counts via a pinned-memory readback.
"""

from __future__ import annotations

import enum
import logging
from typing import Callable, Optional

import torch

from sglang.srt.environ import InvariantCheckLevel, envs

logger = logging.getLogger(__name__)


class Bucket(enum.Enum):
    """Invariant classification by blast radius and recoverability."""

    SOFTEN = "soften"  # recoverable + legitimate event (never a bug)
    GUARD = "guard"  # recoverable + is-a-bug / root cause unknown
    FATAL_CONTAINABLE = "fatal_containable"  # no correct fallback; cheap containment
    FATAL_UNCONTAINABLE = "fatal_uncontainable"  # no containment; global corruption




class Property:
    """A per-element validity predicate; returns an elementwise bool, no reduction."""

    name: str

    def ok(self, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError










class InClosedRange(Property):
    """Closed [lo, hi] -- for value sanity (e.g. a probability / confidence)."""

    def __init__(self, lo, hi):
        self.lo = lo
        self.hi = hi
        self.name = f"in_closed_range[{lo},{hi}]"

    def ok(self, value: torch.Tensor) -> torch.Tensor:
        return (value >= self.lo) & (value <= self.hi)






# name -> Invariant; enumerated by the CI meta-test to enforce injection coverage.
_REGISTRY: dict[str, Invariant] = {}


class Invariant:
    """A declared invariant; constructing one registers it. `recover` is the
    optional python-side data layer (None = signal-only, in the kernel);
    FATAL_UNCONTAINABLE forbids it."""

    def __init__(
        self,
        name: str,
        bucket: Bucket,
        prop: Property,
        *,
        recover: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ):
        if bucket is Bucket.FATAL_UNCONTAINABLE and recover is not None:
            raise ValueError(f"uncontainable FATAL {name!r} cannot have a recover")
        if name in _REGISTRY:
            raise ValueError(f"duplicate invariant {name!r}")
        self.name = name
        self.bucket = bucket
        self.prop = prop
        self.recover = recover
        _REGISTRY[name] = self




def _get_rank() -> int:
    raise NotImplementedError("removed by slim: never run in any recording")


# Per-(rank, name) checks between aggregated log flushes.
_FLUSH_EVERY = 512


class _CheckReporter:
    """Sync-free per-(rank, name) hit counter. Counts accumulate on-device and
    mirror to pinned host via a non-blocking copy; the host reads the (stale)
    count on a later call. First hit logs immediately, the rest on a cadence."""

    def __init__(self):
        self._dev: dict[str, torch.Tensor] = {}
        self._host: dict[str, torch.Tensor] = {}
        self._calls: dict[str, int] = {}
        self._logged_total: dict[str, int] = {}

    def record(self, key: str, bucket: Bucket, hit_count: torch.Tensor, msg: str):
        raise NotImplementedError("removed by slim: never run in any recording")


_reporter = _CheckReporter()






def expect(
    inv: Invariant,
    value: Optional[torch.Tensor],
    *,
    msg: str = "",
) -> Optional[torch.Tensor]:
    raise NotImplementedError("removed by slim: never run in any recording")
