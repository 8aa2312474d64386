from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, List, Optional

import msgspec


if TYPE_CHECKING:
    from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)

DEFAULT_DSPARK_GAMMA = 7
SUPPORTED_DSPARK_MARKOV_HEAD_TYPES = ("vanilla", "gated", "rnn")

# The dsv4 self-drafting checkpoint runs its draft attention on the dedicated
# DeepSeek-V4 backend instead of the generic draft-backend fallback.
DSV4_DRAFT_ATTENTION_BACKEND = "dsv4"


def draft_is_deepseek_v4(*, server_args: ServerArgs) -> bool:
    raise NotImplementedError('slim removed the body of draft_is_deepseek_v4: it never ran in any recording (see sglang/REMOVED.md)')


class DSparkDraftConfig(msgspec.Struct, frozen=True):
    num_hidden_layers: Optional[int]
    num_target_layers: Optional[int]
    gamma: Optional[int]
    target_layer_ids: Optional[List[int]]
    mask_token: str
    mask_token_id: Optional[int]
    markov_rank: int
    markov_head_type: Optional[str]

    def require_markov(self) -> bool:
        raise NotImplementedError('slim removed the body of DSparkDraftConfig.require_markov: it never ran in any recording (see sglang/REMOVED.md)')


def checkpoint_bundles_dspark_draft(hf_config: Any) -> bool:
    raise NotImplementedError('slim removed the body of checkpoint_bundles_dspark_draft: it never ran in any recording (see sglang/REMOVED.md)')


def parse_dspark_draft_config(*, draft_hf_config: Any) -> DSparkDraftConfig:
    raise NotImplementedError('slim removed the body of parse_dspark_draft_config: it never ran in any recording (see sglang/REMOVED.md)')
