"""The serving surface of upstream SGLang (routes, flags and their values, request fields, sampling
parameters, entry points), derived from the pinned tree and committed as data, each item with one status.

Library use: `load_surface(db)` (a pandas table) and `removed_items(policy)` (the front doors' refusals)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from slim.errors import SlimError
from slim.surface.policy import POLICY, load_policy, removed_items  # noqa: F401  (re-exported)

SCHEMA = "slim-surface/1"
INVENTORY = Path("surface") / "inventory.json"  # under the coverage database
COLUMNS = ["id", "kind", "name", "status", "evidence", "reason", "feature", "scenario", "source", "line"]


def inventory_path(db: Path) -> Path:
    return db / INVENTORY


def write_inventory(inventory: dict, db: Path, version: str) -> Path:
    """Atomically write the derived inventory (pretty, sorted) under the coverage database."""
    path = inventory_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"schema": SCHEMA, "upstream": version, **inventory}, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(payload)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_inventory(db: Path, version: str) -> dict:
    """The committed inventory, checked for its schema and upstream version."""
    path = inventory_path(db)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlimError(f"no surface inventory at {path}: run `slim surface --derive`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SlimError(f"surface inventory {path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("items"), list):
        raise SlimError(f"{path} is not a surface inventory (schema {SCHEMA} with items)")
    if data.get("upstream") != version:
        raise SlimError(f"surface inventory {path} is of sglang {data.get('upstream')}, slim is pinned to {version}")
    return data


def surface_rows(db: Path, policy: Path = POLICY) -> tuple[list[dict], list[str]]:
    """Every committed item with its status, and the warnings (stale keeps)."""
    from slim.recording import load_all, recording_paths
    from slim.surface.status import launch_evidence, recording_evidence, statuses
    from slim.upstream import load_pin

    version = load_pin().version
    items = read_inventory(db, version)["items"]
    entries = load_policy(policy, {item["id"] for item in items})
    recordings = load_all(db, version) if recording_paths(db) else []  # none yet: nothing is recorded
    rows, warnings = statuses(items, recording_evidence(items, recordings, defaults_unjudged(entries)), entries)
    unstatused = [row for row in rows if row["status"] == "unstatused"]
    if unstatused:  # each names the scenarios whose recording would status it
        written = launch_evidence(items, written_launches({rec.scenario for rec in recordings}))
        for row in unstatused:
            row["scenario"] = ", ".join(written.get(row["id"], []))
    return rows, warnings


def written_launches(recorded: set[str]) -> dict[str, list[str]]:
    """The launch argv of every scenario of scenarios/ that no recording in the database ran."""
    from scenarios.spec import load_scenario, scenario_names

    return {name: load_scenario(name).launch_command("python3", "MODEL", 30000)
            for name in scenario_names() if name not in recorded}


def defaults_unjudged(entries) -> frozenset[str]:
    """Items whose flag's default no launch that omits the flag records: the kept ones (hardware not
    lent here). A removed flag's default is what every such launch ran, and the front door accepts
    the flag named with it (`--disaggregation-mode null`)."""
    return frozenset(item for entry in entries if entry.section == "kept" for item in entry.items)


def load_surface(db: Path, policy: Path = POLICY) -> pd.DataFrame:
    """One row per surface item: id, kind, name, status, evidence (recording names), reason, feature,
    scenario, source, line, then the kind-specific columns."""
    rows, _ = surface_rows(db, policy)
    frame = pd.DataFrame(rows)
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]
