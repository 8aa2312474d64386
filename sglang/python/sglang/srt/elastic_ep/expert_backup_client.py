import logging


from sglang.srt.environ import envs

PORT_BASE = envs.SGLANG_BACKUP_PORT_BASE.get()
logger = logging.getLogger(__name__)


class ExpertBackupClient:
    pass
