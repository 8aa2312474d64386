"""HiCache integration mixins for the decode side of PD disaggregation"""

from __future__ import annotations

import logging




logger = logging.getLogger(__name__)


class DecodeHiCachePreallocMixin:
    """HiCache hooks for ``DecodePreallocQueue``: issue prefetch + reserve tokens."""

class DecodeHiCacheTransferMixin:
    """HiCache hooks for ``DecodeTransferQueue``: drive restore state machine."""

