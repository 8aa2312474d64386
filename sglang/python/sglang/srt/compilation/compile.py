import logging
from typing import Any, Callable, Optional, Union

import torch

from sglang.srt.compilation.compilation_config import CompilationConfig
from sglang.srt.model_executor.runner_backend_utils.tc_piecewise_cuda_graph import (
    is_in_tc_piecewise_cuda_graph,
)

logger = logging.getLogger(__name__)


        # else: ignore (None or non-tensor)


_MROPE_TOKEN_AXIS_ARGUMENTS = frozenset(
    {"positions", "position_ids", "mrope_positions"}
)


def install_torch_compiled(
    module: torch.nn.Module,
    *,
    dynamic_arg_dims: dict[str, Union[int, list[int]]] | None = None,
    backend_factory: Optional[Callable[[torch.fx.GraphModule, list], Callable]] = None,
    compile_config: CompilationConfig = None,
    fullgraph: bool = True,
    graph_pool: Any = None,
):
    raise NotImplementedError('slim removed the body of install_torch_compiled: it never ran in any recording (see sglang/REMOVED.md)')
