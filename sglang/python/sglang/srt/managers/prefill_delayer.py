import logging
from typing import TYPE_CHECKING


from sglang.srt.environ import envs
from sglang.srt.utils import get_bool_env_var

if TYPE_CHECKING:
    from sglang.srt.observability.metrics_collector import SchedulerMetricsCollector

_DEBUG_LOG = get_bool_env_var("SGLANG_PREFILL_DELAYER_DEBUG_LOG")

logger = logging.getLogger(__name__)


class PrefillDelayer:
    # (Almost) pure function, do not modify self state
    pass


class PrefillDelayerSinglePassExecutor:
    pass


