# Copyright 2023-2024 SGLang Team
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================
import logging
from contextlib import contextmanager
from typing import Callable

from sglang.srt.managers.io_struct import BlockReqInput, BlockReqType

logger = logging.getLogger(__name__)


class SchedulerInputBlocker:
    pass


@contextmanager
def input_blocker_guard_region(dispatch_to_scheduler: Callable[[BlockReqInput], None]):
    raise NotImplementedError('slim removed the body of input_blocker_guard_region: it never ran in any recording (see sglang/REMOVED.md)')
