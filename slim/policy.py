"""The keep-policy (slim/policy.toml): code kept for hardware or packages no recording reaches."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from slim.errors import SlimError

POLICY_FILE = Path(__file__).with_name("policy.toml")


@dataclass(frozen=True)
class Keep:
    file: str
    qualname: str | None  # None: the whole file
    reason: str
    scenario: str

    def covers(self, file: str, qualname: str) -> bool:
        """A qualname entry covers the def itself and everything nested in it."""
        if file != self.file:
            return False
        return self.qualname is None or qualname == self.qualname or qualname.startswith(self.qualname + ".")


@dataclass(frozen=True)
class Policy:
    keeps: tuple[Keep, ...] = ()

    @property
    def files(self) -> dict[str, Keep]:
        return {k.file: k for k in self.keeps if k.qualname is None}

    def keep_for(self, file: str, qualname: str) -> Keep | None:
        return next((k for k in self.keeps if k.covers(file, qualname)), None)


def load_policy(path: Path = POLICY_FILE) -> Policy:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SlimError(f"policy {path}: {exc}") from None
    keeps = []
    for i, entry in enumerate(data.get("keep", [])):
        missing = [k for k in ("path", "reason", "scenario") if not entry.get(k)]
        if missing:
            raise SlimError(f"policy {path}: keep entry {i + 1} lacks {', '.join(missing)}")
        file, _, qualname = entry["path"].partition("::")
        keeps.append(Keep(file, qualname or None, entry["reason"], entry["scenario"]))
    return Policy(tuple(keeps))
