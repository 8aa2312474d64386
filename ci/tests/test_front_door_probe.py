"""The committed runs of ci/probe_front_door.py (the real launch parser on a CPU host): the slimmed tree's
parser refuses every removed flag and value with its own message, and answers every flag and value the
surface keeps exactly as upstream's parser does (same argv, same outcome)."""

from __future__ import annotations

import json
from pathlib import Path

from slim.surface import load_surface

REPO = Path(__file__).resolve().parents[2]
SLIM_RUN = REPO / "coverage_db/benchmarks/front-door-probe-20261207.json"
UPSTREAM_RUN = REPO / "coverage_db/benchmarks/front-door-probe-upstream-20261207.json"


def on_surface_launch_items() -> list[str]:
    frame = load_surface(REPO / "coverage_db")
    keep = frame[frame.kind.isin(["flag", "flag_value"]) & (frame.status != "removed")]
    return keep.id.tolist()


def test_the_slimmed_parser_refuses_every_removed_flag_with_its_message():
    parser = json.loads(SLIM_RUN.read_text())["launch_parser"]
    assert parser["tried"] > 500 and parser["refused_with_the_message"] == parser["tried"]
    assert parser["not_refused"] == []


def test_the_slimmed_parser_answers_every_kept_flag_as_upstreams():
    slim = json.loads(SLIM_RUN.read_text())["parser_outcomes"]
    upstream = json.loads(UPSTREAM_RUN.read_text())["parser_outcomes"]
    items = on_surface_launch_items()
    assert len(items) > 500
    assert set(items) <= set(upstream) and set(items) <= set(slim)  # both runs asked about every one
    assert all(upstream[i]["error"] is None for i in items if i in upstream and "=" in i)  # values parse
    assert [i for i in items if i in upstream and slim.get(i) != upstream[i]] == []


def test_the_python_apis_door_refuses_no_kept_flag():
    """ServerArgs.__post_init__'s door, on each kept flag and value as the launch parser parsed it."""
    api = json.loads(SLIM_RUN.read_text())["python_api_on_kept"]
    assert api["tried"] > 500 and api["refused"] == []
