"""Merge Chrome trace files from multiple ranks (TP, DP, PP, EP) into a single trace."""

import logging

logger = logging.getLogger(__name__)


class ProfileMerger:
    """Merge profile traces from all parallelism types: TP, DP, PP, EP."""

