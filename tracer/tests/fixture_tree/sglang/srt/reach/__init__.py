"""Reachability fixtures for slim's "reach" plan mode (not imported by the traced server):
re-exports under another name, a re-export nothing uses, and __all__."""
from sglang.srt.reach.dead import DeadThing
from sglang.srt.reach.used import helper as used_helper

__all__ = ["DeadThing", "used_helper"]
