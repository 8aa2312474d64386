from typing import Optional

import torch

try:
    pass
except ImportError:


    def prepare_nvfp4_layer_for_petit(layer: torch.nn.Module) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")

    def apply_petit_nvfp4_linear(
        input: torch.Tensor,
        weight: torch.Tensor,
        weight_scale: torch.Tensor,
        weight_scale_2: torch.Tensor,
        size_n: int,
        size_k: int,
        bias: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        raise NotImplementedError("removed by slim: never run in any recording")




def verify_petit_nvfp4_supported(quant_method: str, group_size: Optional[int]) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def prepare_nvfp4_layer_for_petit(layer: torch.nn.Module) -> None:
    raise NotImplementedError("removed by slim: never run in any recording")


def apply_petit_nvfp4_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    weight_scale_2: torch.Tensor,
    size_n: int,
    size_k: int,
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
