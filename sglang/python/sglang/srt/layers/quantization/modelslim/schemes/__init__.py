# SPDX-License-Identifier: Apache-2.0

# NOTE: Import order is critical to avoid circular dependency.
# modelslim_mxfp8 imports ModelSlimLinearScheme from this package,
# so the base class must be imported first.
# isort: off
from .modelslim_scheme import ModelSlimLinearScheme, ModelSlimMoEScheme

# isort: on

__all__ = [
    "ModelSlimLinearScheme",
    "ModelSlimMoEScheme",
]
