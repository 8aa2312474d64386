import logging


from sglang.srt.environ import envs
from sglang.srt.server_args import (
    PortArgs,
    ServerArgs,
)

PORT_BASE = envs.SGLANG_BACKUP_PORT_BASE.get()
logger = logging.getLogger(__name__)


def run_expert_backup_manager(
    server_args: ServerArgs,
    port_args: PortArgs,
):
    raise NotImplementedError('slim removed the body of run_expert_backup_manager: it never ran in any recording (see sglang/REMOVED.md)')
