import logging
from typing import Any, List

import torch.nn as nn

logger = logging.getLogger(__name__)


def register_forward_hooks(model: nn.Module, hook_specs: List[dict[str, Any]]) -> None:
    raise NotImplementedError('slim removed the body of register_forward_hooks: it never ran in any recording (see sglang/REMOVED.md)')


