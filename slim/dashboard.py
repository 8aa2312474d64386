"""Tables behind the coverage dashboards (notebooks/): pure functions from recordings and plans to DataFrames.

The notebooks only plot; every count they show is computed here, so it is tested here.
"Functions run" leaves out `<module>` bodies: those are the imports, counted as modules.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd

from slim.apply import count_lines, subsystem
from slim.kernels import kernel_library
from slim.paths import DB, REPO
from slim.plan import Plan, package_files
from slim.reasons import Why
from slim.recording import Recording

MODULE_BODY = "<module>"
KERNEL_COLUMNS = ["scenario", "kernel", "library", "launches", "gpu_time_us"]


def db_dir() -> Path:
    """The recordings the notebooks read: coverage_db, or $SLIM_DB (tests use a synthetic one)."""
    return Path(os.environ.get("SLIM_DB", DB))


def figures_dir() -> Path:
    """Where notebooks write PNGs: docs/figures, or $SLIM_FIGURES (tests point it at a scratch folder)."""
    path = Path(os.environ.get("SLIM_FIGURES", REPO / "docs" / "figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def py_lines(root: Path, depth: int = 3) -> pd.DataFrame:
    """Per subsystem: .py files and lines of the package under `root`, in the plan's scope."""
    rows = [{"subsystem": subsystem(f, depth), "lines": count_lines(root / f)}
            for f in package_files(root) if f.endswith(".py")]
    frame = pd.DataFrame(rows, columns=["subsystem", "lines"])
    return frame.groupby("subsystem")["lines"].agg(files="size", lines="sum")


def lines_by_subsystem(upstream: Path, slimmed: Path, depth: int = 3) -> pd.DataFrame:
    """Per subsystem: upstream and written (slimmed, function level included) .py files and lines,
    removed = the difference (sorted by subsystem; a subsystem removed whole counts zero kept)."""
    table = py_lines(upstream, depth).add_prefix("upstream_").join(
        py_lines(slimmed, depth).add_prefix("kept_"), how="left").fillna(0).astype("int64")
    table["removed_files"] = table["upstream_files"] - table["kept_files"]
    table["removed_lines"] = table["upstream_lines"] - table["kept_lines"]
    return table.sort_index().rename_axis("subsystem").reset_index()


def planned_lines_by_subsystem(tree: Path, plans: dict[str, Plan], depth: int = 3) -> pd.DataFrame:
    """Per subsystem: upstream lines, and per plan (by label) the lines it keeps: its kept files
    less their outermost deleted defs (platform folding and import pruning come on top in the
    written tree, so these are upper bounds of `slim apply`'s count)."""
    files = {d.path: count_lines(tree / d.path) for d in next(iter(plans.values())).files if d.path.endswith(".py")}
    table = {"upstream_lines": Counter()}
    for path, lines in files.items():
        table["upstream_lines"][subsystem(path, depth)] += lines
    for label, plan in plans.items():
        kept = table[label] = Counter()
        for d in plan.files:
            if d.keep and d.path in files:
                kept[subsystem(d.path, depth)] += files[d.path]
        for d in plan.defs:  # outermost deletions only: a method of a deleted class is inside its class
            if d.action == "delete" and d.reason.kind is not Why.IN_DELETED_CLASS:
                kept[subsystem(d.file, depth)] -= d.lines
    frame = pd.DataFrame(table).fillna(0).astype("int64")
    return frame.sort_index().rename_axis("subsystem").reset_index()


def _functions_run(recording: Recording) -> pd.DataFrame:
    functions = recording.functions
    return functions[functions["qualname"] != MODULE_BODY][["file", "qualname", "line"]]


def _by_scenario(recordings: list[Recording], table) -> dict[str, pd.DataFrame]:
    """Scenario -> union of `table(recording)` over that scenario's recordings."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for recording in recordings:
        frames.setdefault(recording.scenario, []).append(table(recording))
    return {s: pd.concat(fs).drop_duplicates().reset_index(drop=True) for s, fs in sorted(frames.items())}


def scenario_summary(recordings: list[Recording]) -> pd.DataFrame:
    """Per scenario: recordings, module files imported, functions run, files with at least one function run."""
    modules = _by_scenario(recordings, lambda r: r.modules[["file"]].dropna())
    functions = _by_scenario(recordings, _functions_run)
    runs = pd.Series([r.scenario for r in recordings]).value_counts()
    rows = [
        {"scenario": s, "recordings": int(runs[s]), "modules_imported": len(modules[s]),
         "functions_run": len(functions[s]), "files_with_functions_run": functions[s]["file"].nunique()}
        for s in modules
    ]
    return pd.DataFrame(rows, columns=["scenario", "recordings", "modules_imported", "functions_run",
                                       "files_with_functions_run"])


def scenario_matrix(recordings: list[Recording], depth: int = 3) -> pd.DataFrame:
    """Functions run, subsystem (rows) x scenario (columns); 0 where a scenario ran nothing there."""
    frames = [f.assign(scenario=s) for s, f in _by_scenario(recordings, _functions_run).items()]
    functions = pd.concat(frames, ignore_index=True)
    functions["subsystem"] = functions["file"].map(lambda p: subsystem(p, depth))
    matrix = functions.pivot_table(index="subsystem", columns="scenario", values="line", aggfunc="size", fill_value=0)
    matrix.columns.name = None
    return matrix.astype("int64")


def single_scenario_files(recordings: list[Recording], depth: int = 3) -> pd.DataFrame:
    """Files imported by exactly one scenario: the code a single scenario keeps alive (fragile if it goes)."""
    frames = [f.assign(scenario=s) for s, f in _by_scenario(recordings, lambda r: r.modules[["file"]].dropna()).items()]
    imported = pd.concat(frames, ignore_index=True)
    alone = imported[imported.groupby("file")["scenario"].transform("nunique") == 1]
    functions = pd.concat([f.assign(scenario=s) for s, f in _by_scenario(recordings, _functions_run).items()])
    run = functions.groupby(["file", "scenario"]).size().rename("functions_run").reset_index()
    table = alone.merge(run, on=["file", "scenario"], how="left").fillna({"functions_run": 0})
    table["subsystem"] = table["file"].map(lambda p: subsystem(p, depth))
    table["functions_run"] = table["functions_run"].astype("int64")
    return table[["file", "subsystem", "scenario", "functions_run"]].sort_values("file", ignore_index=True)


def diff_recordings(a: Recording, b: Recording) -> pd.DataFrame:
    """Modules and functions present in one recording but not the other; `only_in` names the recording."""
    def items(recording: Recording) -> pd.DataFrame:
        modules = recording.modules.assign(kind="module", name=lambda m: m["module"], line=pd.NA)
        functions = _functions_run(recording).assign(kind="function", name=lambda f: f["qualname"])
        columns = ["kind", "file", "name", "line"]
        table = pd.concat([modules[columns], functions[columns]], ignore_index=True)
        return table.astype({"line": "Int64"})

    left, right = items(a), items(b)
    both = left.merge(right, how="outer", indicator=True)
    both = both[both["_merge"] != "both"]
    both["only_in"] = both["_merge"].map({"left_only": a.name, "right_only": b.name}).astype(object)
    columns = ["kind", "file", "name", "line", "only_in"]
    return both[columns].sort_values(["only_in", "kind", "file", "name"], ignore_index=True)


def kernels(recordings: list[Recording]) -> pd.DataFrame:
    """GPU kernels per scenario, from a recording's optional "kernels" rows.

    A row is [kernel, launches, gpu_time_us, triton source or None] (slim.record.kernel_map);
    the library is read off the name (slim.kernels.kernel_library). Recordings made before
    kernel tracing existed have no "kernels" key: the frame is then empty.
    """
    rows = []
    for recording in recordings:
        for name, launches, gpu_time_us, source in recording.data.get("kernels", []):
            rows.append([recording.scenario, name, kernel_library(name, source), launches, gpu_time_us])
    return pd.DataFrame(rows, columns=KERNEL_COLUMNS)
