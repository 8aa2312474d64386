# Adapted from https://github.com/thinking-machines-lab/batch_invariant_ops/blob/main/batch_invariant_ops/__init__.py

from .batch_invariant_ops import (
    AttentionBlockSize,
    enable_batch_invariant_mode,
    is_batch_invariant_mode_enabled,
    log_softmax,
    rms_norm_batch_invariant,
    )

__version__ = "0.1.0"

__all__ = [
    "is_batch_invariant_mode_enabled",
    "enable_batch_invariant_mode",
    "log_softmax",
    "AttentionBlockSize",
    "rms_norm_batch_invariant",
]
