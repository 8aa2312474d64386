# %% [markdown]
# # Plan modes: what `names`, `reach`, `lean`, `lines` and `surface` keep
#
# All plans are built from all committed recordings on the pinned upstream. `names` keeps every
# module a recording imported and every def kept code names; `reach` keeps what the code that ran
# reaches; `lean` also cuts the methods of classes never instantiated and stubs what only modules
# where nothing ran hold; `lines` also stubs never-run defs no executed line names outside the
# policy's `[[sampled]]` paths; `surface` is `lean` with that rule only under the policy's
# `[[off_surface]]` paths (see `slim/reach.py`). The committed tree is slim/policy.toml's mode
# (the legend says which). Lines are planned: kept files less their deleted defs (a stub counts
# whole, so `lean`, `lines` and `surface` are upper bounds).

# %%
import dataclasses

import matplotlib.pyplot as plt

from slim.dashboard import db_dir, figures_dir, planned_lines_by_subsystem
from slim.plan import make_function_plan, package_files
from slim.policy import PLAN_MODES, load_policy
from slim.recording import load_all
from slim.upstream import load_pin, resolve_tree

tree = resolve_tree(None)
recordings = load_all(db_dir(), load_pin().version)
files = package_files(tree)
plans = {mode: make_function_plan(tree, files, recordings, dataclasses.replace(load_policy(), mode=mode))
         for mode in PLAN_MODES}
lines = planned_lines_by_subsystem(tree, plans)
totals = lines.sum(numeric_only=True)
for mode in PLAN_MODES:
    share = totals[mode] / totals.upstream_lines
    print(f"{mode}: {totals[mode]:,} of {totals.upstream_lines:,} upstream lines ({share:.1%})")
lines.sort_values("upstream_lines", ascending=False).head(30)

# %% [markdown]
# ## The 20 largest subsystems

# %%
top = lines.nlargest(20, "upstream_lines").iloc[::-1]
fig, ax = plt.subplots(figsize=(9, 8))
rows = range(len(top))
colors = {"names": "#c6dbef", "reach": "#6baed6", "lean": "#2171b5", "lines": "#08306b", "surface": "#e6550d"}
committed = load_policy().mode
labels = {committed: f"{committed} (committed)"}
height = 0.8 / (len(PLAN_MODES) + 1)
ax.barh([r + 0.4 - height / 2 for r in rows], top["upstream_lines"], height=height, color="#d9d9d9", label="upstream")
for i, mode in enumerate(PLAN_MODES, 1):
    ax.barh([r + 0.4 - height * (i + 0.5) for r in rows], top[mode], height=height, color=colors[mode],
            label=labels.get(mode, mode))
ax.set_yticks(list(rows), top["subsystem"])
ax.set_xlabel("lines of Python (planned)")
ax.set_title("planned share of upstream lines:\n"
             + ", ".join(f"{mode} {totals[mode] / totals.upstream_lines:.0%}" for mode in PLAN_MODES))
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(figures_dir() / "plan_modes.png", dpi=100, metadata={"Software": None})
