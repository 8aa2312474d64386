"""
Conv2d/Conv3d layers with unfold+linear optimization for patch embeddings.

When kernel_size == stride, padding == 0, dilation == 1, groups == 1, the conv
is equivalent to unfold + F.linear, which is significantly faster on CUDA and
also avoids the PyTorch 2.9.1 + CuDNN < 9.15 Conv3d bug
(https://github.com/pytorch/pytorch/issues/168167).
"""

import math
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from sglang.srt.layers.utils.multi_platform import MultiPlatformOp
from sglang.srt.utils import cpu_has_amx_support, is_cpu

_is_cpu = is_cpu()
_is_cpu_amx_available = cpu_has_amx_support()

_VALID_PADDING_STRINGS = {"same", "valid"}
_VALID_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


def _tuplify(val, n: int) -> tuple:
    raise NotImplementedError('slim removed the body of _tuplify: it never ran in any recording (see sglang/REMOVED.md)')


def _check_enable_linear(
    kernel_size: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    groups: int,
) -> bool:
    raise NotImplementedError('slim removed the body of _check_enable_linear: it never ran in any recording (see sglang/REMOVED.md)')


def _reverse_repeat_tuple(t: tuple) -> tuple:
    raise NotImplementedError('slim removed the body of _reverse_repeat_tuple: it never ran in any recording (see sglang/REMOVED.md)')


def _compute_same_padding_for_pad(kernel_size: tuple, dilation: tuple) -> tuple:
    raise NotImplementedError('slim removed the body of _compute_same_padding_for_pad: it never ran in any recording (see sglang/REMOVED.md)')


def _validate_conv_args(
    in_channels: int,
    out_channels: int,
    groups: int,
    padding,
    padding_mode: str,
    stride: tuple,
) -> None:
    raise NotImplementedError('slim removed the body of _validate_conv_args: it never ran in any recording (see sglang/REMOVED.md)')


class Conv3dLayer(MultiPlatformOp):
    """Drop-in replacement for nn.Conv3d with automatic linear optimization."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Tuple[int, int, int]],
        stride: Union[int, Tuple[int, int, int]] = 1,
        padding: Union[int, Tuple[int, int, int], str] = 0,
        dilation: Union[int, Tuple[int, int, int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        disable_linear: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuplify(kernel_size, 3)
        self.stride = _tuplify(stride, 3)
        self.dilation = _tuplify(dilation, 3)
        self.groups = groups
        self.padding_mode = padding_mode

        _validate_conv_args(
            in_channels, out_channels, groups, padding, padding_mode, self.stride
        )

        if isinstance(padding, str):
            self.padding = (0, 0, 0) if padding == "valid" else padding
        else:
            self.padding = _tuplify(padding, 3)

        if isinstance(self.padding, str):
            self._reversed_padding_repeated_twice = _compute_same_padding_for_pad(
                self.kernel_size, self.dilation
            )
        else:
            self._reversed_padding_repeated_twice = _reverse_repeat_tuple(self.padding)

        padding_tuple = self.padding if isinstance(self.padding, tuple) else (1, 1, 1)
        self.enable_linear = not disable_linear and _check_enable_linear(
            self.kernel_size, self.stride, padding_tuple, self.dilation, groups
        )

        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)

        self._reset_parameters()

    def _reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = nn.init._calculate_correct_fan(self.weight, "fan_in")
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward_cpu(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of Conv3dLayer.forward_cpu: it never ran in any recording (see sglang/REMOVED.md)')

    def forward_native(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of Conv3dLayer.forward_native: it never ran in any recording (see sglang/REMOVED.md)')

    def forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError('slim removed the body of Conv3dLayer.forward_cuda: it never ran in any recording (see sglang/REMOVED.md)')
