"""`slim surface`: the coverage table of the serving surface, the unstatused items, or every item as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slim.errors import SlimError

STATUSES = ("recorded", "kept", "removed", "unstatused")


def coverage_table(rows: list[dict]) -> Table:
    """Per kind: how many items, and how many in each status."""
    table = Table("kind", "total", *STATUSES)
    kinds = sorted({row["kind"] for row in rows})
    for kind in kinds + ["all"]:
        mine = [row for row in rows if kind in ("all", row["kind"])]
        table.add_row(kind, str(len(mine)), *(str(sum(row["status"] == s for row in mine)) for s in STATUSES))
    return table


def run_surface(db: Path, policy: Path, derive: bool, as_json: bool, show_all: bool, shown: int,
                console: Console) -> None:
    """Derive (when asked), then report; exits 1 (SlimError) while any item is unstatused, except with --json,
    whose stdout must stay one JSON document (the statuses are in it)."""
    from slim.surface import surface_rows, write_inventory
    from slim.upstream import default_tree, load_pin

    if derive:
        from slim.surface.derive import derive_inventory

        pin = load_pin()
        inventory = derive_inventory(default_tree(pin))
        path = write_inventory(inventory, db, pin.version)
        if not as_json:  # stdout stays one JSON document
            console.print(f"derived {len(inventory['items'])} items into {path}; unresolved: "
                          f"{json.dumps(inventory['unresolved'])}", highlight=False, soft_wrap=True)
    rows, warnings = surface_rows(db, policy)
    if as_json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return
    console.print(coverage_table(rows))
    for line in warnings:
        console.print(f"warning: {line}", highlight=False, soft_wrap=True)
    missing = [row for row in rows if row["status"] == "unstatused"]
    if missing:
        for row in missing if show_all else missing[:shown]:
            where = f"  (scenario {row['scenario']} names it; no recording of it yet)" if row["scenario"] else ""
            console.print(f"unstatused: {row['id']}{where}", highlight=False, soft_wrap=True)
        more = "" if show_all or len(missing) <= shown else f" (first {shown} shown; --all for every one)"
        raise SlimError(f"{len(missing)} surface item(s) have no status: record them, or add them to "
                        f"slim/surface.toml with a reason{more}")
