"""The sglang modules the slimmed tree keeps that every recording imported and none ran beyond importing
(its module body is the only code object that started in it): issue 29's candidates for import pruning.

    .venv/bin/python benchmarks/import_only.py [--db coverage_db] [--tree sglang] [--out FILE.json]

For each candidate: its lines in the slimmed tree and the kept modules that import it at module level
(the statements a pruning would make lazy or drop). Pure CPU, from the committed recordings; how much
start-up time pruning them would save is a GPU measurement (`ci/gpu_session.sh bench`), not this.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slim.import_facts import import_facts  # noqa: E402
from slim.module_names import module_name  # noqa: E402
from slim.recording import load_all  # noqa: E402
from slim.upstream import load_pin  # noqa: E402


def import_only(recordings: list, kept: set[str]) -> list[str]:
    """Kept files (package-relative paths) every recording imported and whose only code that ran is `<module>`."""
    ran, imported_by = defaultdict(set), defaultdict(int)
    for recording in recordings:
        for file, qualname, *_ in recording.data["functions"]:
            ran[file].add(qualname)
        for file in {row[1] for row in recording.data["modules"] if row[1]}:
            imported_by[file] += 1
    return sorted(f for f, n in imported_by.items() if n == len(recordings) and f in kept and ran[f] <= {"<module>"})


def importers(root: Path, files: list[str], candidates: list[str]) -> dict[str, list[str]]:
    """Candidate -> the kept files whose module-level imports may load it."""
    wanted = {module_name(c): c for c in candidates}
    found = defaultdict(list)
    for path in files:
        for name in import_facts(root, path)[0]:
            if name in wanted and wanted[name] != path:
                found[wanted[name]].append(path)
    return {c: sorted(set(found[c])) for c in candidates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("coverage_db"))
    parser.add_argument("--tree", type=Path, default=Path("sglang"))
    parser.add_argument("--out", type=Path, default=Path("coverage_db/benchmarks/import-only-modules.json"))
    args = parser.parse_args()
    root = args.tree / "python"
    kept = sorted(p.relative_to(root).as_posix() for p in (root / "sglang").rglob("*.py"))
    recordings = load_all(args.db, load_pin().version)
    candidates = import_only(recordings, set(kept))
    by = importers(root, kept, candidates)
    rows = [{"file": c, "lines": len((root / c).read_text().splitlines()), "imported_at_module_level_by": by[c]}
            for c in candidates]
    report = {"schema": "slim-import-only/1", "command": " ".join(sys.argv), "recordings": len(recordings),
              "kept_files": len(kept), "candidates": len(rows), "lines": sum(r["lines"] for r in rows), "modules": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(rows)} kept modules only imported ({report['lines']:,} lines) -> {args.out}")


if __name__ == "__main__":
    main()
