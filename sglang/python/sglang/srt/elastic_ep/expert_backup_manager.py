import logging


from sglang.srt.configs.load_config import LoadConfig
from sglang.srt.configs.model_config import ModelConfig
from sglang.srt.environ import envs
from sglang.srt.managers.io_struct import (
    BackupDramReq,
    ExpertWeightPointer,
    sock_recv,
    sock_send,
)
from sglang.srt.model_loader.loader import DefaultModelLoader, get_model_loader
from sglang.srt.model_loader.utils import set_default_torch_dtype
from sglang.srt.runtime_context import publish
from sglang.srt.server_args import (
    PortArgs,
    ServerArgs,
)
from sglang.srt.utils.network import get_local_ip_auto

PORT_BASE = envs.SGLANG_BACKUP_PORT_BASE.get()
logger = logging.getLogger(__name__)


def run_expert_backup_manager(
    server_args: ServerArgs,
    port_args: PortArgs,
):
    raise NotImplementedError('slim removed the body of run_expert_backup_manager: it never ran in any recording (see sglang/REMOVED.md)')
