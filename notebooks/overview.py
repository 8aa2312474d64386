# %% [markdown]
# # Overview: upstream sglang vs the slimmed tree
#
# Lines of Python per subsystem in upstream sglang 0.5.17 (the LLM server and its `test` package, whose operator
# tools are kept; `multimodal_gen` is out of scope) and what the committed slimmed tree (`sglang/`, written by
# `slim apply` from all committed recordings, function-level slimming included) holds. Tables come from
# `slim.dashboard`.

# %%
import matplotlib.pyplot as plt
import squarify

from slim.dashboard import figures_dir, lines_by_subsystem
from slim.paths import OUT
from slim.upstream import resolve_tree

tree = resolve_tree(None)  # the pinned, hash-checked upstream (`slim fetch`)
lines = lines_by_subsystem(tree, OUT / "python")
totals = lines.sum(numeric_only=True)
print(f"upstream {totals.upstream_files} files / {totals.upstream_lines:,} lines; "
      f"kept {totals.kept_files} / {totals.kept_lines:,} ({totals.kept_lines / totals.upstream_lines:.1%})")
lines.sort_values("upstream_lines", ascending=False)

# %% [markdown]
# ## Upstream vs slimmed lines per subsystem (the 25 largest)

# %%
top = lines.nlargest(25, "upstream_lines").iloc[::-1]
fig, ax = plt.subplots(figsize=(9, 8))
ax.barh(top["subsystem"], top["upstream_lines"], color="#d9d9d9", label="upstream")
ax.barh(top["subsystem"], top["kept_lines"], color="#2b8cbe", label="kept (slimmed)")
ax.set_xlabel("lines of Python")
ax.set_title(f"sglang 0.5.17: {totals.kept_lines:,} of {totals.upstream_lines:,} lines in the slimmed tree "
             f"({totals.kept_lines / totals.upstream_lines:.1%})")
ax.legend(loc="lower right")
fig.tight_layout()
# No Software metadata: the same data gives the same PNG bytes.
fig.savefig(figures_dir() / "overview_lines.png", dpi=100, metadata={"Software": None})

# %% [markdown]
# ## Treemap: kept vs deleted lines by folder
#
# One tile per subsystem, area = upstream lines; the blue part is kept, the red part deleted.

# %%
tiles = lines[lines["upstream_lines"] > 0].sort_values("upstream_lines", ascending=False)
width, height = 16.0, 9.0
rects = squarify.squarify(squarify.normalize_sizes(tiles["upstream_lines"], width, height), 0, 0, width, height)
fig, ax = plt.subplots(figsize=(width, height))
for rect, row in zip(rects, tiles.itertuples(), strict=True):
    x, y, dx, dy = rect["x"], rect["y"], rect["dx"], rect["dy"]
    kept_dx = dx * row.kept_lines / row.upstream_lines  # split each tile left (kept) / right (deleted)
    ax.add_patch(plt.Rectangle((x, y), kept_dx, dy, facecolor="#2b8cbe", edgecolor="white"))
    ax.add_patch(plt.Rectangle((x + kept_dx, y), dx - kept_dx, dy, facecolor="#e34a33", edgecolor="white"))
    ax.add_patch(plt.Rectangle((x, y), dx, dy, fill=False, edgecolor="black", linewidth=1.2))
    if dx * dy > 1.2:  # label only tiles big enough to read
        label = f"{row.subsystem.removeprefix('sglang/')}\n{row.kept_lines:,} / {row.upstream_lines:,}"
        ax.text(x + dx / 2, y + dy / 2, label, ha="center", va="center", fontsize=8)
ax.set_xlim(0, width)
ax.set_ylim(0, height)
ax.axis("off")
ax.set_title("Kept (blue) vs deleted (red) lines per subsystem; tile area = upstream lines")
fig.tight_layout()
fig.savefig(figures_dir() / "overview_treemap.png", dpi=100, metadata={"Software": None})
