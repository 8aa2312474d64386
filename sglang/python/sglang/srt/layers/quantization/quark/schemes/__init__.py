# SPDX-License-Identifier: Apache-2.0

from .quark_scheme import QuarkLinearScheme, QuarkMoEScheme

__all__ = [
    "QuarkLinearScheme",
    "QuarkMoEScheme",
]
