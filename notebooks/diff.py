# %% [markdown]
# # Diff of the two most recent recordings
#
# Modules imported and functions run (module bodies left out) in one recording but not the other. With fewer than
# two recordings there is nothing to compare, and the notebook says so.

# %%
from IPython.display import display

from slim.apply import subsystem
from slim.dashboard import db_dir, diff_recordings, figures_dir
from slim.recording import load_all
from slim.upstream import load_pin

# Run names start with a UTC timestamp (20261123T083725Z-host), so sorting by name sorts by time.
recordings = sorted(load_all(db_dir(), load_pin().version), key=lambda r: r.name)
if len(recordings) < 2:
    print(f"Only one recording ({recordings[0].scenario}/{recordings[0].name}): nothing to diff yet.")
    diff = None
else:
    a, b = recordings[-2:]
    print(f"a = {a.scenario}/{a.name}\nb = {b.scenario}/{b.name}")
    diff = diff_recordings(a, b)
    display(diff.groupby(["only_in", "kind"]).size().unstack(fill_value=0))

# %%
if diff is not None and not diff.empty:
    counts = diff.assign(subsystem=diff["file"].fillna("(no file)").map(subsystem))
    counts = counts.groupby(["subsystem", "only_in"]).size().unstack(fill_value=0)
    counts = counts.loc[counts.sum(axis=1).sort_values().index[-25:]]
    ax = counts.plot.barh(figsize=(9, 0.35 * len(counts) + 2))
    ax.set_xlabel("modules + functions only in that recording")
    ax.set_title("Where the two most recent recordings differ")
    ax.figure.tight_layout()
    ax.figure.savefig(figures_dir() / "diff.png", dpi=100, metadata={"Software": None})
    display(diff)
