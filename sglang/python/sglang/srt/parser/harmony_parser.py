import re
from dataclasses import dataclass
from typing import Iterator, List, Tuple


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


def prefix_hold(text: str, tokens: List[str]) -> Tuple[str, str]:
    raise NotImplementedError("removed by slim: never run in any recording")


def iter_tokens(text: str, start_pos: int = 0) -> Iterator[Token]:
    raise NotImplementedError("removed by slim: never run in any recording")


class CanonicalStrategy:
    """Parses the canonical Harmony format with channel markers."""

    def __init__(self):
        self.guard_tokens = [
            "<|start|>",
            "<|channel|>",
            "<|message|>",
            "<|constrain|>",
            "<|end|>",
            "<|call|>",
            "<|return|>",
        ]

    def parse(self, text: str) -> Tuple[List[Event], str]:
        raise NotImplementedError("removed by slim: never run in any recording")







class TextStrategy:
    """Parses the text-based Harmony fallback format."""

    def __init__(self):
        self.buffer_context = ""
        self.patterns = {
            "analysis_then_final": re.compile(
                r"^\s*(?:assistant)?\s*(analysis|commentary)(.*?)\s*assistantfinal\s*(.*)\s*$",
                re.IGNORECASE | re.DOTALL,
            ),
            "final_only": re.compile(
                r"^\s*assistantfinal\s*(.*)\s*$", re.IGNORECASE | re.DOTALL
            ),
            "analysis_only": re.compile(
                r"^\s*(?:assistant)?\s*(analysis|commentary)(.*)\s*$",
                re.IGNORECASE | re.DOTALL,
            ),
        }


    def parse(self, text: str) -> Tuple[List[Event], str]:
        raise NotImplementedError("removed by slim: never run in any recording")


class HarmonyParser:
    """Facade for parsing Harmony format, switching between strategies."""

    def __init__(self):
        self.strategy = None
        self._buffer = ""
        self._should_filter_commentary = (
            False  # Track if we should filter commentary in next chunks
        )
        self._partial_commentary = (
            ""  # Track partial commentary being built across chunks
        )

    def parse(self, chunk: str) -> List[Event]:
        raise NotImplementedError("removed by slim: never run in any recording")
