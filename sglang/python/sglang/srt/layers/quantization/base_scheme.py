# SPDX-License-Identifier: Apache-2.0

from abc import ABC, abstractmethod

import torch

__all__ = ["BaseMoEScheme"]


class BaseMoEScheme(ABC):
    """
    Abstract class used to describe the weight creation and forward pass
    of different quantization schemes.
    """

    @abstractmethod
    def create_weights(self, *args, **kwargs):
        """
        Weight creation for the particular scheme. Inputs to this function

        """
        raise NotImplementedError

    @abstractmethod
    def process_weights_after_loading(self, layer: torch.nn.Module):
        """
        Called after weight loading is complete for any cleanup that
        needs to occur.
        """
        raise NotImplementedError
