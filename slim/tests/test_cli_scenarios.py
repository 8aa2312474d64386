"""`slim scenarios`: the matrix with each scenario's state, read from the committed coverage_db."""

from typer.testing import CliRunner

from scenarios.spec import load_scenario, scenario_names
from slim.cli import app
from slim.paths import DB
from slim.recording import PENDING


def test_the_matrix_tells_recorded_pending_and_unrecorded_apart():
    result = CliRunner().invoke(app, ["scenarios"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    state = {cells[1].strip(): cells[-2].strip() for cells in
             (line.split("│") for line in result.output.splitlines() if line.startswith("│"))}
    pending = {p.name for p in (DB / PENDING).iterdir()} if (DB / PENDING).is_dir() else set()
    assert state["dsv3_fp8_tp1_surface_requests"] == "recorded"  # verified on the committed tree
    assert all(state[name] == "pending: see below" for name in pending)
    assert state["r1_nvfp4_ep16"] == "not recorded: see below"
    awaiting = [name for name in scenario_names() if load_scenario(name).awaiting_verify]
    assert all(state[name] == "recorded, verify pending: see below" for name in awaiting)
