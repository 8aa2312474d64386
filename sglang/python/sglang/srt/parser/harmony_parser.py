from dataclasses import dataclass


@dataclass
class Event:
    """Represents a parsed event from the Harmony stream."""

    event_type: str
    content: str
    raw_text: str = None  # Original text including structural markers


@dataclass
class Token:
    """A structural token in the Harmony format."""

    type: str
    start: int
    end: int


class HarmonyParser:
    """Facade for parsing Harmony format, switching between strategies."""

