"""slim/surface.toml: which surface items leave (whole features, with the reason an operator reads in the
refusal) and which stay whole untested here (hardware this project cannot borrow, with the scenario
that would record them)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from slim.errors import SlimError

POLICY = Path(__file__).resolve().parent.parent / "surface.toml"
SECTION_KEYS = {"removed": ("items", "feature", "reason"), "kept": ("items", "reason", "scenario")}


@dataclass(frozen=True)
class Entry:
    """One [[removed]] or [[kept]] table: its exact item ids and why."""

    section: str
    items: tuple[str, ...]
    reason: str
    feature: str = ""
    scenario: str = ""


def load_policy(path: Path = POLICY, known_ids: set[str] | None = None) -> list[Entry]:
    """The policy's entries, checked: required keys, exact ids that exist (when `known_ids` is given),
    no id listed twice."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SlimError(f"surface policy {path}: {exc}") from None
    unknown_sections = set(data) - set(SECTION_KEYS)
    if unknown_sections:
        raise SlimError(f"surface policy {path}: unknown section(s) {', '.join(sorted(unknown_sections))}")
    entries, seen = [], {}
    for section, required in SECTION_KEYS.items():
        for number, table in enumerate(data.get(section, []), 1):
            where = f"surface policy {path}: [[{section}]] #{number}"
            missing = [key for key in required if not table.get(key)]
            extra = set(table) - set(required)
            if missing or extra:
                raise SlimError(f"{where} lacks {', '.join(missing)}" if missing else f"{where} has unknown key(s) "
                                f"{', '.join(sorted(extra))}")
            if not isinstance(table["items"], list) or not all(isinstance(i, str) for i in table["items"]):
                raise SlimError(f"{where}: items must be a list of item ids")
            for item in table["items"]:
                if known_ids is not None and item not in known_ids:
                    raise SlimError(f"{where}: {item!r} is not an item of the surface inventory (exact ids only)")
                if item in seen:
                    raise SlimError(f"{where}: {item!r} is already listed in {seen[item]}")
                seen[item] = f"[[{section}]] #{number}"
            entries.append(Entry(section, tuple(table["items"]), table["reason"], table.get("feature", ""),
                                 table.get("scenario", "")))
    return entries


# In every refusal: how a client (fuzzer, kits, verify) tells a front-door refusal from an error.
REFUSAL_MARK = "was removed from this slimmed SGLang"


def refusal_message(feature: str, reason: str) -> str:
    """What the slimmed server answers where a user names a removed item (flag, field, route)."""
    return (f"{feature} {REFUSAL_MARK} ({reason}). To get it back: record a scenario that "
            f"uses it (slim record --scenario ...) and run slim apply.")


def removed_items(policy: list[Entry] | Path = POLICY) -> list[dict]:
    """Each removed id with its feature, reason and refusal message, sorted by id (the front doors' input)."""
    entries = load_policy(policy) if isinstance(policy, Path) else policy
    return sorted(({"id": item, "feature": e.feature, "reason": e.reason,
                    "message": refusal_message(e.feature, e.reason)}
                   for e in entries if e.section == "removed" for item in e.items), key=lambda row: row["id"])
