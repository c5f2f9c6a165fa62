# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Distances, trajectories and similarities
#
# Reproduces **Fig 3**, **Fig 4** (Fig 25 for VGG-16), **Fig 14** and **Fig 15** of the paper.
#
# * **Fig 3**: for each level $L$, the distance from the rewind point projected on level $L$,
#   $Pr_L(rewind) = m_L \odot W_{rewind}$, to the projected previous solution
#   $Pr_L(min(L-1)) = m_L \odot W_{min(L-1)}$ and to the solution actually found, $W_{min(L)}$.
#   *Look for:* $Pr_L(min(L-1))$ is the closer one at most levels, yet SGD does not go there.
# * **Fig 4**: training loss (log scale) along level $L$'s SGD run, and along level $L-1$'s run
#   projected on $m_L$ epoch by epoch. *Look for:* the path of level $L$ is steeper, which is why
#   SGD ends at $W_{min(L)}$ rather than at $Pr_L(min(L-1))$.
# * **Figs 14, 15**: Euclidean distances and cosine similarities between the points of interest.
#   *Look for:* IMP solutions are close to each other and similar in direction; $W_{RI}$ and the
#   randomly pruned solutions are far away.
#
# Losses are measured on the fixed analysis subset (no augmentation) with BatchNorm statistics
# recomputed at every point, since projected points have none of their own.

# %% tags=["parameters"]
params_file = None  # parameter YAML; None: $LTHKIT_PARAMS, else params/smoke.yaml
interactive = None  # level picker widgets; None: widgets unless papermill injected a YAML
replicate = 0  # which replicate of the run (0..run.replicates-1); lthkit-report sets it
# `papermill -f preset.yaml` injects the preset's sections here (every section of Params):
defaults = None
run = None
data = None
model = None
train = None
imp = None
baselines = None
analysis = None
hessian = None
landscape = None
report = None
claims = None
mnist = None
bain = None

# %%
import lthkit as lk
from lthkit import plots
from lthkit.analysis import geometry
from lthkit.train.baselines import BaselineResults
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "03_distances_trajectories")
layout = ctx.evaluator.layout
print(f"levels {levels}; {layout.size} trainable parameters; analysis subset of "
      f"{ctx.analysis_data[1].numel()} examples")

# %% [markdown]
# ## Fig 3: distances from the projected rewind point

# %%
distances = geometry.rewind_distances(imp_results, layout, levels)
ctx.store.save_table(distances, "fig03_distances.csv")
ctx.store.save_figure(plots.fig03_distances(distances, title=P.model.arch), "fig03_distances.png")
distances.round(4)

# %% [markdown]
# ## Fig 4: SGD trajectories, level $L$ against level $L-1$ projected on $m_L$

# %%
trajectory_levels = geometry.trajectory_levels(imp_results, levels)
trajectories = {lv: geometry.trajectory_losses(ctx, ctx.evaluator, lv) for lv in trajectory_levels}
for lv, result in trajectories.items():
    ctx.store.save_figure(plots.fig04_trajectory(result, lv), f"fig04_trajectory_level{lv:02d}.png")
lk.level_picker(lambda lv: plots.fig04_trajectory(trajectories[lv], lv), trajectory_levels,
                interactive, static=P.levels(P.report.show_levels))

# %% [markdown]
# The paper reads Fig 4 as "the trajectory for level $L$ is steeper": as a number, the
# least-squares slope of $\ln$(loss) per epoch of each trajectory (more negative: steeper), the
# table the claim R1-fig4 below is judged on.

# %%
slopes = geometry.trajectory_slopes(trajectories)
ctx.store.save_table(slopes, "fig04_trajectories.csv")
slopes.round(4)

# %% [markdown]
# ## Figs 14 and 15: distances and cosine similarities between the points of interest
# Every IMP solution, and the baselines trained at one level (the picker chooses the level).

# %%
baseline_results = BaselineResults(ctx.store)
matrices = geometry.similarity_matrices(imp_results, baseline_results, layout)


def render_matrices(level: int | None):
    return plots.fig14_15_matrices(*matrices[level], title="" if level is None
                                   else f"(baselines of level {level})")


for lv, (distance, cosine) in matrices.items():
    suffix = "" if lv is None else f"_baselines_level{lv:02d}"
    ctx.store.save_table(distance, f"fig14_distances{suffix}.csv")
    ctx.store.save_table(cosine, f"fig15_cosine{suffix}.csv")
    ctx.store.save_figure(render_matrices(lv), f"fig14_15{suffix}.png")

lk.choice_picker(render_matrices, list(matrices), interactive, static=list(matrices)[-1:],
                 description="baselines of level")

# %% [markdown]
# Result 5 reads these matrices as blocks: the IMP solutions are closer to one another (and more
# alike in direction) than to W_RI and W_RP, and W_OS is closer to them than W_RP' is. The mean of
# each block, per level with baselines (the claims below judge them):

# %%
blocks = geometry.similarity_blocks(matrices)
ctx.store.save_table(blocks, "fig14_15_blocks.csv")
blocks.round(4)

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the main tables above, their mean and the
# 95% t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "fig03_distances.csv");

# %% [markdown]
# ## Claims: does each statement hold on this run?
# Each statement this notebook tests, as a comparison of two measured sides per level, judged
# across the replicates of the run (`run.replicates`; with one replicate every verdict is
# inconclusive). The rule is printed under the table; published numbers never enter a verdict.
# The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "03_distances_trajectories")
print(paper_claims.rule_text(ctx, "03_distances_trajectories"))
claims_table
