from __future__ import annotations

import logging
import re
from typing import Optional

from transformers.models.whisper.tokenization_whisper import LANGUAGES

from sglang.srt.entrypoints.openai.protocol import (
    TranscriptionRequest,
    TranscriptionUsage,
    TranscriptionVerboseResponse,
)
from sglang.srt.entrypoints.openai.transcription_adapters.base import (
    TranscriptionAdapter,
    register_transcription_adapter,
)

logger = logging.getLogger(__name__)

# Sampling-params key the adapter plants and the multimodal processor pops
# to flip the decoder prompt from the explicit 4-token forced sequence to
# the bare ``<|startoftranscript|>`` (so the FSM regex drives token 1-3
# instead). Centralized so adapter / processor / warmup all reference the
# same string.
FUSED_AUTODETECT_FLAG = "_detect_language"

# The complete set of Whisper language tokens as they appear in the tokenizer
# vocab (<|xx|> / <|xxx|>). Sourced from the upstream ``LANGUAGES`` dict in
# ``transformers.models.whisper.tokenization_whisper`` so newly-added tokens
# (e.g. ``yue`` in Whisper v3) automatically propagate.
#
# Intentionally wider than ``processors.whisper.ISO639_1_SUPPORTED_LANGS``
# (the narrower input-validation set used by ``normalize_language_to_code``)
# — for the FSM regex we want every language the model was trained on so we
# don't silently force a wrong nearest-match code on audio in languages the
# model *can* detect but the input dict doesn't list (yue/Cantonese,
# jw/Javanese, haw/Hawaiian, ba/Bashkir, su/Sundanese, ...). Codes whose
# ``<|xxx|>`` token isn't in an older checkpoint's vocab are harmless —
# xgrammar simply leaves that regex branch with no admissible tokens.
WHISPER_LANG_TOKEN_CODES: frozenset[str] = frozenset(LANGUAGES.keys())

# Two forced-prefix variants, picked at request build time based on whether
# the client asked for timestamp_granularities:
#   * notimestamps variant: <|lang|><|transcribe|><|notimestamps|> text...
#     — drops segment/word timing, used when the client doesn't request it.
#   * timestamps variant:   <|lang|><|transcribe|><|0.00|> text <|X.XX|> ...
#     — <|0.00|> anchors the first segment at t=0, and the model naturally
#     emits further timestamp tokens between segments. _parse_segments
#     reconstructs segments from output_ids afterwards.
# sorted() gives a deterministic regex string so the warmup-compiled FSM is
# reused across server restarts.
_LANG_ALT = "|".join(re.escape(c) for c in sorted(WHISPER_LANG_TOKEN_CODES))
_LANG_PREFIX = r"<\|(" + _LANG_ALT + r")\|>"
WHISPER_AUTODETECT_REGEX = (
    _LANG_PREFIX + r"<\|transcribe\|>" + r"<\|notimestamps\|>" + r"[\s\S]*"
)
WHISPER_AUTODETECT_TS_REGEX = (
    _LANG_PREFIX + r"<\|transcribe\|>" + r"<\|0\.00\|>" + r"[\s\S]*"
)

# Forced-prefix patterns, one per FSM variant. Each is anchored at start
# and rejects anything missing ``<|transcribe|>`` so a bypassed FSM or a
# mid-stream snapshot can't slip through as a valid detection. The two
# patterns differ in what the third forced token is decoded *as*:
#
# * ``_FUSED_PREFIX_RE_NOTS`` — non-timestamps variant. The third token
#   is ``<|notimestamps|>`` (id 50364), which detokenizes to its literal
#   string. Mid-stream snapshots stuck at ``<|en|><|transcribe|>`` (the
#   third token hasn't fired yet) correctly miss this regex, so the
#   streaming handler can detect FSM-abort and surface an error.
#
# * ``_FUSED_PREFIX_RE_TS`` — timestamps variant. The third token is
#   ``<|0.00|>`` (id 50365), which Whisper's tokenizer decodes to the
#   *empty string* even with ``skip_special_tokens=False`` (only
#   ``<|notimestamps|>`` survives detokenization; every ``<|X.XX|>``
#   maps to ``""``). So the regex must accept just
#   ``<|en|><|transcribe|>`` and rely on the FSM having already
#   constrained ``output_ids[2] == 50365``. ``_parse_segments`` reads
#   the timestamps from ``output_ids`` directly, so segment timing is
#   unaffected.
_FUSED_PREFIX_RE_NOTS = re.compile(
    r"^" + _LANG_PREFIX + r"<\|transcribe\|><\|notimestamps\|>"
)
_FUSED_PREFIX_RE_TS = re.compile(r"^" + _LANG_PREFIX + r"<\|transcribe\|>")

# Fixed Whisper control tokens (see transformers.models.whisper vocab).
# <|startoftranscript|> / <|startofprev|> / <|startoflm|> only appear at
# the decoder prompt and never in generated output, but they are cheap to
# include and harmless if they ever leak.
_WHISPER_CONTROL_TOKENS = frozenset(
    {
        "endoftext",
        "startoftranscript",
        "startofprev",
        "startoflm",
        "translate",
        "transcribe",
        "notimestamps",
        "nospeech",
    }
)

# Scrubs only actual Whisper special-token literals: language codes
# (WHISPER_LANG_TOKEN_CODES), control tokens (_WHISPER_CONTROL_TOKENS),
# and timestamp tokens (<|X.XX|>, where X.XX matches the
# ``{ts_base + k * 0.02}`` schema the model emits). A broad
# ``<\|[^|]+\|>`` would eat legitimate spoken content on audio that
# pronounces angle-bracket / pipe sequences (e.g. someone reading
# ``<|endoftext|>`` out loud). Used to scrub trailing ``<|endoftext|>``
# and embedded ``<|X.XX|>`` timestamp tokens from the user-visible text
# in fused-autodetect responses, where ``skip_special_tokens=False`` is
# needed to preserve the language prefix for parsing but would otherwise
# leak other special tokens downstream.
_SPECIAL_TOKEN_RE = re.compile(
    r"<\|(?:"
    + "|".join(sorted(WHISPER_LANG_TOKEN_CODES | _WHISPER_CONTROL_TOKENS))
    + r"|\d+\.\d{2}"
    + r")\|>"
)


@register_transcription_adapter("Whisper")
class WhisperAdapter(TranscriptionAdapter):
    TIMESTAMP_BASE_TOKEN_ID = 50365  # <|0.00|>
    TIMESTAMP_BASE_OFFSET = 0.02  # each token step = 0.02 s

    def build_sampling_params(self, request: TranscriptionRequest) -> dict:
        raise NotImplementedError('slim removed the body of WhisperAdapter.build_sampling_params: it never ran in any recording (see sglang/REMOVED.md)')

    # -- language detection ------------------------------------------------

    @property
    def supports_language_detection(self) -> bool:
        return True

    def build_fused_autodetect_params(self, request: TranscriptionRequest) -> dict:
        raise NotImplementedError('slim removed the body of WhisperAdapter.build_fused_autodetect_params: it never ran in any recording (see sglang/REMOVED.md)')

    @staticmethod
    def parse_fused_output(
        text: str, *, ts_variant: bool = False
    ) -> tuple[Optional[str], Optional[str]]:
        raise NotImplementedError('slim removed the body of WhisperAdapter.parse_fused_output: it never ran in any recording (see sglang/REMOVED.md)')

    @staticmethod
    def strip_special_tokens(text: str) -> str:
        raise NotImplementedError('slim removed the body of WhisperAdapter.strip_special_tokens: it never ran in any recording (see sglang/REMOVED.md)')

    # -- end language detection --------------------------------------------

    def build_verbose_response(
        self,
        request: TranscriptionRequest,
        text: str,
        ret: dict,
        tokenizer,
        usage: TranscriptionUsage,
    ) -> TranscriptionVerboseResponse:
        raise NotImplementedError('slim removed the body of WhisperAdapter.build_verbose_response: it never ran in any recording (see sglang/REMOVED.md)')

