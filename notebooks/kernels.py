# %% [markdown]
# # GPU kernels per scenario
#
# Kernel name, library, launches and GPU time per scenario, read from a recording's `kernels` rows. Recordings made
# before kernel tracing existed have none; then this notebook says so and draws nothing.

# %%
from IPython.display import display

from slim.dashboard import db_dir, figures_dir, kernels
from slim.recording import load_all
from slim.upstream import load_pin

recordings = load_all(db_dir(), load_pin().version)
table = kernels(recordings)
if table.empty:
    print(f"No kernel data yet: none of the {len(recordings)} recordings has a 'kernels' table "
          "(kernel tracing is a later stage), so there is nothing to show here.")

# %%
if not table.empty:
    by_library = table.pivot_table(index="library", columns="scenario", values="gpu_time_us", aggfunc="sum") / 1000
    ax = by_library.sort_values(by_library.columns[0]).plot.barh(figsize=(9, 0.4 * len(by_library) + 2))
    ax.set_xlabel("GPU time (ms)")
    ax.set_title("GPU time per library and scenario")
    ax.figure.tight_layout()
    ax.figure.savefig(figures_dir() / "kernels_by_library.png", dpi=100, metadata={"Software": None})
    display(table.sort_values("gpu_time_us", ascending=False).head(30))
