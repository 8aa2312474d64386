"""The Plan and its decisions: what `slim apply` keeps, stubs and deletes, file by file and def by def."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from slim.policy import Policy
from slim.reasons import Reason


@dataclass(frozen=True)
class FileDecision:
    path: str  # relative to the upstream root, e.g. "sglang/srt/utils.py"
    keep: bool
    reason: Reason


@dataclass(frozen=True)
class DefDecision:
    file: str
    qualname: str
    line: int  # co_firstlineno (first decorator line)
    kind: str  # function | method | class
    action: str  # keep | delete | stub (the signature stays, the body raises)
    reason: Reason
    lines: int
    policy_entry: str | None = None  # the slim/policy.toml path that decided it, as written there


@dataclass
class FileEdits:
    """What `slim apply` does to one kept module (besides deleting its defs)."""
    helpers: list[str] = field(default_factory=list)  # platform probes folded to False: is_hip()
    constants: list[str] = field(default_factory=list)  # module constants folded to False: _is_hip
    registry: list[str] = field(default_factory=list)  # names dropped from registry literals and __all__
    imports: list[str] = field(default_factory=list)  # sglang import bindings nothing live reads (there)



def _as_json(decision: FileDecision | DefDecision) -> dict:
    """A decision as the plan JSON has it: its reason as the prose (the kind is not written)."""
    return {**asdict(decision), "reason": str(decision.reason)}


@dataclass
class Plan:
    recordings: list[str]
    files: list[FileDecision] = field(default_factory=list)
    defs: list[DefDecision] = field(default_factory=list)  # empty: module level only
    edits: dict[str, FileEdits] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    # Top-level names the recorded processes imported (not in the JSON: its dependency rows say it).
    recorded_imports: list[str] = field(default_factory=list)

    def to_json(self, extra: dict | None = None) -> str:
        """The whole plan, sorted, for `slim plan --json` (with `extra`: what `slim apply` adds)."""
        return json.dumps({**(extra or {}), "recordings": self.recordings, "files": [_as_json(d) for d in self.files],
                           "defs": [_as_json(d) for d in self.defs],
                           "edits": {k: asdict(v) for k, v in sorted(self.edits.items())},
                           "policy": [asdict(k) for k in self.policy.keeps],
                           "whole": [asdict(w) for w in self.policy.wholes]}, indent=1, sort_keys=True)

    def defs_by_file(self) -> dict[str, list[DefDecision]]:
        out: dict[str, list[DefDecision]] = {}
        for d in self.defs:
            out.setdefault(d.file, []).append(d)
        return out

    @property
    def kept(self) -> list[str]:
        return [d.path for d in self.files if d.keep]

    @property
    def removed(self) -> list[FileDecision]:
        return [d for d in self.files if not d.keep]
