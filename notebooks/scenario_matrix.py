# %% [markdown]
# # Scenario matrix: which scenario runs what
#
# Per scenario (all its recordings together): modules imported, functions run (module bodies left out) and files
# with at least one function run; then functions run per subsystem and scenario, and the files that only one
# scenario imports: the code that goes away, or breaks unnoticed, if that scenario is dropped.

# %%
import matplotlib.pyplot as plt
import numpy as np

from slim.dashboard import db_dir, figures_dir, scenario_matrix, scenario_summary, single_scenario_files
from slim.recording import load_all
from slim.upstream import load_pin

recordings = load_all(db_dir(), load_pin().version)
scenario_summary(recordings)

# %% [markdown]
# ## Functions run: subsystem x scenario

# %%
matrix = scenario_matrix(recordings)
matrix = matrix.loc[matrix.sum(axis=1).sort_values(ascending=False).index]
fig, ax = plt.subplots(figsize=(5 + 1.2 * matrix.shape[1], 0.28 * len(matrix) + 1.5))
image = ax.imshow(np.log10(matrix.to_numpy() + 1), aspect="auto", cmap="viridis")
ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
ax.set_yticks(range(len(matrix)), matrix.index)
for (i, j), value in np.ndenumerate(matrix.to_numpy()):
    ax.text(j, i, f"{value:,}", ha="center", va="center", fontsize=7, color="white" if value < 100 else "black")
fig.colorbar(image, ax=ax, label="log10(functions run + 1)", fraction=0.08, shrink=0.4)
ax.set_title("Functions run, subsystem x scenario")
fig.tight_layout()
fig.savefig(figures_dir() / "scenario_matrix.png", dpi=100, metadata={"Software": None})

# %% [markdown]
# ## Fragile code: files imported by exactly one scenario

# %%
single = single_scenario_files(recordings)
if len(matrix.columns) < 2:
    print(f"Only one scenario is recorded ({matrix.columns[0]}), so all {len(single)} imported files are "
          "single-scenario; this table becomes informative once a second scenario is recorded.")
single.groupby(["scenario", "subsystem"]).agg(files=("file", "size"), functions_run=("functions_run", "sum"))

# %%
# The single-scenario files that the scenario imports but never runs a function of: kept for one import only.
single[single["functions_run"] == 0].groupby("subsystem").size().sort_values(ascending=False).rename("files")
