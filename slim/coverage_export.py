"""Export a recording to coverage.py's data file, so `coverage report` / `coverage html` work on it.

Runs outside the traced processes. Files are mapped to absolute paths inside the
upstream tree (the folder that holds `sglang/`). Line-mode recordings give the
executed lines; others mark the first line of every function that ran (its
`def`, or the first decorator line, as `co_firstlineno` has it), so coverage
reads "which functions ran", not "which lines ran".
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from coverage import CoverageData

from slim.errors import SlimError
from slim.recording import Recording, load_recording


def recording_lines(data: dict) -> dict[str, set[int]]:
    """Package-relative file -> executed lines (line mode) or first lines of functions run."""
    lines: dict[str, set[int]] = defaultdict(set)
    if "lines" in data:
        for rel, line, _ in data["lines"]:
            lines[rel].add(int(line))
    else:
        for rel, _, line, _ in data["functions"]:
            lines[rel].add(int(line))
    return lines


def export(recording: Recording | dict | Path, upstream_tree: Path, out_path: Path) -> Path:
    """Write `out_path` (a coverage.py SQLite data file) for one recording; returns out_path."""
    if isinstance(recording, (str, Path)):
        recording = load_recording(Path(recording))
    data = recording.data if isinstance(recording, Recording) else recording
    tree = Path(upstream_tree).resolve()
    measured: dict[str, list[int]] = {}
    missing = []
    for rel, lines in recording_lines(data).items():
        path = tree / rel
        if not path.is_file():
            missing.append(rel)
            continue
        measured[str(path)] = sorted(lines)
    if missing and not measured:
        raise SlimError(f"none of the recording's files are in {tree} (first: {missing[0]}): wrong upstream tree?")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.unlink(missing_ok=True)
    coverage_data = CoverageData(basename=str(out_path))
    coverage_data.add_lines(measured)
    coverage_data.write()
    return out_path
