from __future__ import annotations

import logging
from copy import deepcopy


from sglang.srt.runtime_context import get_context, get_spec
from sglang.srt.server_args import ServerArgs
from sglang.srt.speculative.dflash_info import DFlashVerifyInput


logger = logging.getLogger(__name__)

# trtllm_mha: decode-only dense-MQA drafts (dspark). DFLASH excludes it
# earlier, at arg resolution (speculative_hook.py) -- its draft path needs
# per-layer DFlash attention -- so it never reaches this gate with it.
_SUPPORTED_DRAFT_BACKENDS = (
    "flashinfer",
    "fa3",
    "fa4",
    "triton",
    "ascend",
    "trtllm_mha",
)


def _draft_load_format_fields() -> dict:
    draft_load_format = get_spec().speculative_draft_load_format
    if draft_load_format is None:
        return {}
    return dict(load_format=draft_load_format)


def draft_server_args_copy(server_args: ServerArgs, target_model_config) -> ServerArgs:
    """A draft-only ``ServerArgs`` for the workers that build their own draft.

    Starts from the config the process resolved, not from the pristine seed:
    the copy is published while the draft builds, and load-time overrides made
    before this point (the chunked-prefix gate, the SM100 GDN prefill default)
    are part of what the draft's layers must see. On top of that,
    ``context_length`` follows the target (the draft reads target KV) and
    ``load_format`` follows ``--speculative-draft-load-format``. The target's
    own instance is untouched.
    """
    draft_load_format = get_spec().speculative_draft_load_format
    if draft_load_format is not None:
        logger.info(f"Using draft model load_format: '{draft_load_format}'")

    resolved = {}
    for _source, fields in get_context().overrides_log():
        resolved.update(fields)

    draft_server_args = deepcopy(server_args)
    draft_server_args.override(
        "draft_worker.copy",
        **{
            **resolved,
            "context_length": target_model_config.context_len,
            **_draft_load_format_fields(),
        },
    )
    return draft_server_args


