"""File a device call's results into the repository: what `ci/gpu_session.sh` brought back as
results.tar.xz (a copy of coverage_db with this call's reports added, and the logs).

    .venv/bin/python ci/collect_results.py RESULTS.tar.xz [--dry-run]

Each file the call wrote (results.tar.xz's written.txt; in results of older calls, a verify report newer
than the repository's, or a file the repository lacks) is filed by what it says:
- passed on the committed tree (its served digest is the tree's; a pass as slim/verify.py
  `counts_as_pass` judges it, against the recording's reference): beside its recording, and the
  scenario's `awaiting_verify` line goes; a run still under coverage_db/unverified/ is named for
  promotion by hand (moving it changes the plan's inputs, so `slim apply --check` must follow);
- failed, or on another tree: under coverage_db/benchmarks/ as SCENARIO-failed-TIME or
  SCENARIO-tree<digest>-TIME, never over the report beside the recording (an earlier pass stays);
- the shared-GPU copies, fuzz and other result files the call wrote: copied as they are (a failed
  report identical to a shared-GPU copy the call kept is not filed twice).
Recordings (.json.gz) a record call wrote are listed, not filed: where one goes is a decision.
Prints one line per file and what it did; --dry-run writes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slim.apply import served_digest  # noqa: E402
from slim.recording import PENDING, UNVERIFIED  # noqa: E402
from slim.verify import report_passes, report_stamp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AWAITING = re.compile(r'^awaiting_verify = ".*"\n', re.M)


def written(db: Path, listing: Path) -> list[Path]:
    """The files the call wrote: as listed by gpu_session.sh, else (older results) new verify reports and
    files the repository lacks."""
    if listing.is_file():
        return [db.parent / line for line in listing.read_text().split() if line]
    return sorted(p for p in db.rglob("*") if p.is_file())


def new_to(repo_file: Path, path: Path, listed: bool) -> bool:
    if listed or not repo_file.is_file():
        return True
    if path.name.endswith(".verify.json"):
        return json.loads(path.read_text())["verified_at"] > json.loads(repo_file.read_text())["verified_at"]
    return False  # the repository's own file, copied into the call (or a newer version of it here)


class Filing(NamedTuple):
    """Where one new verify report goes, what it says, and whether a pass of the committed tree."""
    target: Path
    said: str
    passed_here: str | None = None  # the scenario whose awaiting_verify goes
    kept_apart: bool = False  # a failure or another tree's report: under benchmarks/


def file_report(path: Path, rel: Path, repo: Path, tree: str) -> Filing:
    report = json.loads(path.read_text())
    scenario, waiting = report["scenario"], rel.parts[0] in (UNVERIFIED, PENDING)
    if not waiting and not (repo / "coverage_db" / rel.parts[0]).is_dir():  # a waiting run copied up for the call
        home = next((f for f in (UNVERIFIED, PENDING) if (repo / "coverage_db" / f / scenario).is_dir()), None)
        rel, waiting = (Path(home) / rel, True) if home else (rel, False)
    if report.get("served_digest") != tree:
        name = f"{scenario}-tree{report.get('served_digest', '')[:8]}-{report_stamp(report)}.verify.json"
        return Filing(repo / "coverage_db/benchmarks" / name, "another tree", kept_apart=True)
    if not report_passes(report, [path.parent, repo / "coverage_db" / rel.parent]):
        return Filing(repo / "coverage_db/benchmarks" / f"{scenario}-failed-{report_stamp(report)}.verify.json",
                      f"failed: {str(report.get('first_mismatch') or report.get('start_failure'))[:100]}",
                      kept_apart=True)
    if waiting:
        return Filing(repo / "coverage_db" / rel, f"passed; promote it by hand (git mv coverage_db/{rel.parent} ...)")
    said = "passed" if report["passed"] else f"passes as judged today (was: {str(report['first_mismatch'])[:80]})"
    return Filing(repo / "coverage_db" / rel, said, passed_here=scenario)


def collect(results: Path, repo: Path, dry_run: bool) -> list[str]:
    tree, lines = served_digest(repo / "sglang"), []
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(results) as tar:
            tar.extractall(scratch, filter="data")
        db, listing = Path(scratch) / "db", Path(scratch) / "written.txt"
        mine = [p for p in written(db, listing)
                if new_to(repo / "coverage_db" / p.relative_to(db), p, listing.is_file())]
        kept_copies = {p.read_bytes() for folder in (db, repo / "coverage_db")
                       for p in (folder / "benchmarks").glob("*.verify.json")}
        for path in mine:
            rel = path.relative_to(db)
            if path.name.endswith(".json.gz"):
                lines.append(f"{rel}: a recording; file it by hand (coverage_db/pending/ or unverified/)")
                continue
            if rel.parts[0] in ("benchmarks", "fuzz", "surface", "bundle") or not path.name.endswith(".verify.json"):
                filing = Filing(repo / "coverage_db" / rel, "copied")
            else:
                filing = file_report(path, rel, repo, tree)
                if filing.kept_apart and path.read_bytes() in kept_copies:
                    lines.append(f"{rel}: {filing.said}; already kept as a shared-GPU copy")
                    continue
            lines.append(f"{rel}: {filing.said} -> {filing.target.relative_to(repo)}")
            if dry_run:
                continue
            filing.target.parent.mkdir(parents=True, exist_ok=True)
            filing.target.write_bytes(path.read_bytes())
            toml = repo / "scenarios" / f"{filing.passed_here}.toml"
            if filing.passed_here and toml.is_file() and AWAITING.search(toml.read_text()):
                toml.write_text(AWAITING.sub("", toml.read_text(), count=1))
                lines.append(f"scenarios/{filing.passed_here}.toml: awaiting_verify dropped")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    if not args.results.is_file():
        sys.exit(f"error: no results at {args.results} (a device call's files_at/results.tar.xz)")
    print("\n".join(collect(args.results, args.repo, args.dry_run)) or "nothing new in the results")


if __name__ == "__main__":
    main()
