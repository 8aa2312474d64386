"""`slim scenarios`: the matrix with each scenario's state, read from the committed coverage_db."""

import json

from typer.testing import CliRunner

from scenarios.spec import load_scenario, scenario_names
from slim.cli import app
from slim.paths import DB
from slim.recording import PENDING, UNVERIFIED


def test_the_matrix_tells_recorded_pending_and_unrecorded_apart():
    result = CliRunner().invoke(app, ["scenarios", "--json"])
    assert result.exit_code == 0, result.output
    state = {row["scenario"]: row["state"] for row in json.loads(result.output)}
    assert set(state) == set(scenario_names())
    waiting = {folder: {p.name for p in (DB / folder).iterdir()} if (DB / folder).is_dir() else set()
               for folder in (PENDING, UNVERIFIED)}
    recorded = {p.parent.name for p in DB.glob("*/*.json.gz")} - {"benchmarks", "bundle"}
    for name in recorded:  # a recorded scenario is either verified on this tree or awaits it
        assert state[name] == ("awaiting verify" if load_scenario(name).awaiting_verify else "recorded"), name
    assert all(state[name] == "pending" for name in waiting[PENDING])
    assert all(state[name] == "unverified" for name in waiting[UNVERIFIED])
    assert state["r1_nvfp4_ep16"] == "not recorded (note)"
    awaiting = [name for name in scenario_names() if load_scenario(name).awaiting_verify]
    assert all(state[name] == "awaiting verify" for name in awaiting)


def test_at_80_columns_every_scenario_name_is_whole():
    result = CliRunner().invoke(app, ["scenarios"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    shown = {line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│")}
    assert shown == set(scenario_names())
    wide = CliRunner().invoke(app, ["scenarios", "--wide"], env={"COLUMNS": "250"}).output
    assert "last recorded" in wide and "- r1_nvfp4_ep16: " in wide
