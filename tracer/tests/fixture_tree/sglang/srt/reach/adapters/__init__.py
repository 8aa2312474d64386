"""Adapters that register themselves when imported, like upstream's transcription_adapters:
the package imports them for that side effect only (the bound names are never used)."""
from sglang.srt.reach.adapters.base import register, resolve  # noqa: F401
from sglang.srt.reach.adapters.default import DefaultAdapter  # noqa: F401
from sglang.srt.reach.adapters.other import OtherAdapter  # noqa: F401
