"""The device-call helpers on CPU: ci/room.sh's lean mode (what a first verify call carries) and
ci/gpu_session.sh's lanes (two verify servers on one GPU, failures rerun alone)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

CI = Path(__file__).resolve().parents[1]


def repo_with(tmp_path: Path, paths: list[str]) -> Path:
    repo = tmp_path / "repo"
    for rel in paths:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(rel)
    (repo / "ci").mkdir(exist_ok=True)
    shutil.copy(CI / "room.sh", repo / "ci" / "room.sh")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def room(repo: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOM": str(tmp_path / "room")}
    return subprocess.run(["bash", "ci/room.sh", *args], cwd=repo, env=env, capture_output=True, text=True)


def test_lean_keeps_only_the_named_recordings_and_in_puts_all_back(tmp_path):
    paths = ["sglang/python/x.py", "docs/a.md", "slim/cli.py", "slim/tests/test_x.py",
             "coverage_db/s1/r.json.gz", "coverage_db/s2/r.json.gz", "coverage_db/benchmarks/b.json"]
    repo = repo_with(tmp_path, paths)
    assert room(repo, tmp_path, "out", "lean", "s1").returncode == 0
    left = {p for p in paths if (repo / p).exists()}
    assert left == {"slim/cli.py", "coverage_db/s1/r.json.gz"}
    assert room(repo, tmp_path, "out", "lean", "s1").returncode == 1  # an earlier `out` not put back
    assert room(repo, tmp_path, "in").returncode == 0
    assert all((repo / p).read_text() == p for p in paths)


def test_refs_carries_every_reference_without_the_traces_and_in_restores_the_recordings(tmp_path):
    repo = repo_with(tmp_path, ["slim/cli.py", "docs/a.md", "coverage_db/benchmarks/b.json"])
    run = {"schema": "x", "outputs": [{"path": "/generate", "output": {"text": "hi"}}], "command": ["python3"],
           "functions": [["a.py", "f", 1]] * 50, "processes": [{"pid": 1}], "modules": [["sglang", "a.py"]]}
    recorded = gzip.compress(json.dumps(run).encode())
    for rel in ("coverage_db/s1/r.json.gz", "coverage_db/unverified/s2/r.json.gz"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(recorded)
    assert room(repo, tmp_path, "out", "refs").returncode == 0
    for rel in ("coverage_db/s1/r.json.gz", "coverage_db/unverified/s2/r.json.gz"):
        ref = json.loads(gzip.decompress((repo / rel).read_bytes()))
        assert ref["outputs"] == run["outputs"] and ref["command"] == run["command"]
        assert ref["functions"] == ref["processes"] == ref["modules"] == []
    assert not (repo / "docs").exists() and not (repo / "coverage_db/benchmarks").exists()
    assert room(repo, tmp_path, "in").returncode == 0
    assert (repo / "coverage_db/s1/r.json.gz").read_bytes() == recorded  # the recordings, not the copies
    assert (repo / "coverage_db/benchmarks/b.json").read_text() == "coverage_db/benchmarks/b.json"


def lanes_script(tmp_path: Path, failing: set[str], killed: frozenset[str] = frozenset()) -> str:
    """run_lanes from gpu_session.sh, with a run_scenarios that fails `failing` beside another lane, and
    `killed` there before it writes a report (its timeout), an older report of an earlier call beside it."""
    source = (CI / "gpu_session.sh").read_text()
    body = source[source.index("run_lanes() {"):]
    body = body[:body.index("\n}\n") + 3]
    fail, kill = " ".join(sorted(failing | killed)), " ".join(sorted(killed))
    return f"""RES={tmp_path}/res; mkdir -p $RES/db
for s in {kill}; do mkdir -p $RES/db/$s && echo old > $RES/db/$s/r.verify.json
  touch -d 2000-01-01 $RES/db/$s/r.verify.json; done
run_scenarios() {{ local verb=$1; shift; for s in "$@"; do
  echo "$s lanes=$SLIM_VERIFY_LANES"
  case " {kill} " in *" $s "*) [ "$SLIM_VERIFY_LANES" = 1 ] || {{ echo "$s" >> "$RES/failed-$verb"; continue; }} ;; esac
  mkdir -p $RES/db/$s && echo "$s $SLIM_VERIFY_LANES" > $RES/db/$s/r.verify.json
  case " {fail} " in *" $s "*) [ "$SLIM_VERIFY_LANES" = 1 ] || echo "$s" >> "$RES/failed-$verb" ;; esac
done; }}
{body}
LANES=2 STAGGER_S=0 run_lanes verify a b c d
"""


def test_lanes_deal_the_scenarios_and_rerun_failures_alone(tmp_path):
    run = subprocess.run(["bash", "-c", lanes_script(tmp_path, {"b"})], capture_output=True, text=True)
    lines = run.stdout.splitlines()
    assert sorted(line for line in lines if "lanes=2" in line) == [f"{s} lanes=2" for s in "abcd"]
    assert lines[-1] == "b lanes=1"  # after both lanes: alone
    res = tmp_path / "res" / "db"
    assert (res / "b" / "r.verify.json").read_text() == "b 1\n"  # the alone verdict is the one kept
    shared = list((res / "benchmarks").glob("b-lanes2-*.verify.json"))
    assert len(shared) == 1 and shared[0].read_text() == "b 2\n"  # the shared-GPU one as evidence
    killed = subprocess.run(["bash", "-c", lanes_script(tmp_path / "k", set(), frozenset({"c"}))],
                            capture_output=True, text=True)
    assert killed.stdout.splitlines()[-1] == "c lanes=1"
    assert not (tmp_path / "k" / "res" / "db" / "benchmarks").exists()  # no older report passed off as this one
    quiet = subprocess.run(["bash", "-c", lanes_script(tmp_path / "q", set())], capture_output=True, text=True)
    assert "alone again" not in quiet.stdout
