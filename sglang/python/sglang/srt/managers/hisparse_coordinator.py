# to be combined with the sparse coordinator class and sparse algorithm family

import logging


from sglang.srt.utils import get_device_module, is_hip

device_module = get_device_module()

_is_hip = is_hip()

logger = logging.getLogger(__name__)


class HiSparseCoordinator:
    pass
