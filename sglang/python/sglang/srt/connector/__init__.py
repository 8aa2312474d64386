# SPDX-License-Identifier: Apache-2.0

import enum
import logging

from sglang.srt.connector.base_connector import (
    BaseConnector,
    )
from sglang.srt.utils import parse_connector_type

logger = logging.getLogger(__name__)


class ConnectorType(str, enum.Enum):
    FS = "filesystem"
    KV = "KV"
    INSTANCE = "instance"


def create_remote_connector(url, device=None, **kwargs) -> BaseConnector:
    raise NotImplementedError('slim removed the body of create_remote_connector: it never ran in any recording (see sglang/REMOVED.md)')


def get_connector_type(client: BaseConnector) -> ConnectorType:
    raise NotImplementedError('slim removed the body of get_connector_type: it never ran in any recording (see sglang/REMOVED.md)')


__all__ = [
    "BaseConnector",
    "ConnectorType",
    "create_remote_connector",
    "get_connector_type",
]
