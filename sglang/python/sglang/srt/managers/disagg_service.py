"""Start bootstrap/kv-store-related server"""


from sglang.srt.disaggregation.utils import (
    DisaggregationMode,
    KVClassType,
    TransferBackend,
    get_kv_class,
)
from sglang.srt.server_args import ServerArgs


def start_disagg_service(
    server_args: ServerArgs,
):
    # Start kv bootstrap server on prefill
    disagg_mode = DisaggregationMode(server_args.disaggregation_mode)
    transfer_backend = TransferBackend(server_args.disaggregation_transfer_backend)

    if disagg_mode == DisaggregationMode.PREFILL:
        # only start bootstrap server on prefill tm
        kv_bootstrap_server_class = get_kv_class(
            transfer_backend, KVClassType.BOOTSTRAP_SERVER
        )
        bootstrap_server = kv_bootstrap_server_class(
            host=server_args.host,
            port=server_args.disaggregation_bootstrap_port,
        )
        maybe_create_ascend_config_store(
            server_args=server_args, transfer_backend=transfer_backend
        )

        return bootstrap_server


def maybe_create_ascend_config_store(
    server_args: ServerArgs, transfer_backend: TransferBackend
) -> None:
    raise NotImplementedError('slim removed the body of maybe_create_ascend_config_store: it never ran in any recording (see sglang/REMOVED.md)')
