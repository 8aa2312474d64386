from __future__ import annotations

import logging



logger = logging.getLogger(__name__)



class SchedulerPPMixin:
    pass


