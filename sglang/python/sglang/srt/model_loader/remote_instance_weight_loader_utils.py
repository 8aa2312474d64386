# SPDX-License-Identifier: Apache-2.0

import enum
import logging
from typing import List


logger = logging.getLogger(__name__)


class RemoteInstanceWeightLoaderBackend(str, enum.Enum):
    NCCL = "nccl"
    TRANSFER_ENGINE = "transfer_engine"
    MODELEXPRESS = "modelexpress"


def trigger_init_weights_send_group_for_remote_instance_request(
    remote_instance_weight_loader_seed_instance_ip: str,
    remote_instance_weight_loader_seed_instance_service_port: int,
    remote_instance_weight_loader_send_weights_group_ports: List[int],
    remote_instance_weight_loader_client_id: str,
):
    raise NotImplementedError('slim removed the body of trigger_init_weights_send_group_for_remote_instance_request: it never ran in any recording (see sglang/REMOVED.md)')


def register_memory_region(model, transfer_engine):
    raise NotImplementedError('slim removed the body of register_memory_region: it never ran in any recording (see sglang/REMOVED.md)')


