import logging



logger = logging.getLogger(__name__)


class LoRAOverlapLoader:
    pass
