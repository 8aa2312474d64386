from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)


def apply_kimi_k3_spec_backend_defaults(server_args: ServerArgs) -> None:
    raise NotImplementedError('slim removed the body of apply_kimi_k3_spec_backend_defaults: it never ran in any recording (see sglang/REMOVED.md)')


def disable_kimi_k3_symm_mem(server_args: ServerArgs) -> None:
    """Turn `--enable-symm-mem` back off unless every phase runs eager.

    Symm-mem allocations are per-forward, so an address captured into a graph is
    neither reserved for its lifetime nor at the same offset on every rank. Under
    capture that corrupts spec decode: accept collapses to 1.000, or the server
    silently emits garbage with accept pinned at the ceiling. Prefill counts too --
    the same allocation sits in any captured RowParallelLinear.

    Gates on the arch itself: this runs from cuda-graph resolution, which is earlier
    than the model-specific hook block.
    """
    from sglang.srt.connector import ConnectorType
    from sglang.srt.model_executor.cuda_graph_config import Backend
    from sglang.srt.utils import parse_connector_type

    if not server_args.enable_symm_mem:
        return
    if parse_connector_type(server_args.model_path) == ConnectorType.INSTANCE:
        return
    if server_args.get_model_config().hf_config.architectures[0] not in (
        "KimiLinearForCausalLM",
        "KimiK3ForConditionalGeneration",
    ):
        return
    graph = server_args.cuda_graph_config
    if (
        graph.decode.backend == Backend.DISABLED
        and graph.prefill.backend == Backend.DISABLED
    ):
        return
    server_args.enable_symm_mem = False
    logger.warning(
        "Kimi hybrid model: ignoring --enable-symm-mem because CUDA graphs are on. "
        "The symmetric-memory pool's per-forward allocations are not valid for the "
        "lifetime of a captured graph, which corrupts speculative decoding and can "
        "silently produce wrong output. The auto-probed K3 fused all-reduce is faster "
        "anyway. Disable capture on every phase "
        "(--cuda-graph-backend-decode=disabled --cuda-graph-backend-prefill=disabled) "
        "if you genuinely need symmetric memory."
    )


def apply_kimi_k3_linear_attn_defaults(server_args: ServerArgs) -> None:
    raise NotImplementedError('slim removed the body of apply_kimi_k3_linear_attn_defaults: it never ran in any recording (see sglang/REMOVED.md)')
