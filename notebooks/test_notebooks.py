"""Every dashboard notebook executes without error, on the committed recordings and on a synthetic two-scenario
coverage_db with kernel data (so the branches that real data does not reach yet run too). CPU only."""

import pytest

from slim import notebooks  # needs the test extras (pip install -e '.[test]'); missing ones should fail, not skip
from slim.tests.dashboard_data import write_two_scenarios
from slim.upstream import default_tree, load_pin

PATHS = notebooks.notebook_paths()
# Figures a notebook must write (kernels.py and diff.py draw only when the data has something to show).
FIGURES = {"overview": {"overview_lines.png", "overview_treemap.png"}, "scenario_matrix": {"scenario_matrix.png"}}
NEEDS_UPSTREAM = {"overview"}
SYNTHETIC_FIGURES = {"scenario_matrix": {"scenario_matrix.png"}, "kernels": {"kernels_by_library.png"},
                     "diff": {"diff.png"}}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs_on_committed_data(path, tmp_path):
    if path.stem in NEEDS_UPSTREAM and not default_tree(load_pin()).is_dir():
        pytest.skip("upstream not fetched: run `slim fetch` (ci/setup.sh does)")
    notebooks.execute(path, figures=tmp_path)
    assert FIGURES.get(path.stem, set()) <= {p.name for p in tmp_path.glob("*.png")}


@pytest.mark.parametrize("path", [p for p in PATHS if p.stem in SYNTHETIC_FIGURES], ids=lambda p: p.stem)
def test_notebook_runs_on_two_scenarios_with_kernels(path, tmp_path):
    db = write_two_scenarios(tmp_path / "db")
    notebooks.execute(path, figures=tmp_path / "figures", db=db)
    assert SYNTHETIC_FIGURES[path.stem] <= {p.name for p in (tmp_path / "figures").glob("*.png")}
