# %% [markdown]
# # Plan modes: what `names`, `reach` (the committed tree; both GPU-verified) and `lean` keep
#
# All plans are built from all committed recordings on the pinned upstream. `names` keeps every
# module a recording imported and every def kept code names; `reach` keeps what the code that ran
# reaches; `lean` also cuts the methods of classes never instantiated and stubs what only modules
# where nothing ran hold (see `slim/reach.py`; not GPU-verified yet). Lines are planned: kept
# files less their deleted defs (a stub counts whole, so `lean` is an upper bound here).

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
colors = {"names": "#9ecae1", "reach": "#2b8cbe", "lean": "#08519c"}
labels = {"reach": "reach (committed)", "lean": "lean (not GPU-verified)"}
ax.barh([r + 0.3 for r in rows], top["upstream_lines"], height=0.2, color="#d9d9d9", label="upstream")
for i, mode in enumerate(PLAN_MODES):
    ax.barh([r + 0.1 - 0.2 * i for r in rows], top[mode], height=0.2, color=colors[mode], label=labels.get(mode, mode))
ax.set_yticks(list(rows), top["subsystem"])
ax.set_xlabel("lines of Python (planned)")
ax.set_title(" vs ".join(f"{mode} {totals[mode] / totals.upstream_lines:.0%}" for mode in PLAN_MODES)
             + " of upstream lines")
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(figures_dir() / "plan_modes.png", dpi=100, metadata={"Software": None})
