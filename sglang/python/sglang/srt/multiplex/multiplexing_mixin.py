"""
Mixin class providing multiplexing scheduling logic
"""

from __future__ import annotations

import logging




logger = logging.getLogger(__name__)


class SchedulerMultiplexMixin:

    # TODO(jason-fxz): This is a temporary demo
    pass
