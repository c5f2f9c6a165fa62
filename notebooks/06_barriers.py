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
# # 06 · Loss barriers along straight lines
#
# Reproduces **Figs 12, 9, 17 and 19** of Saleem, Ahuja, Prasad and Lall, *Insights into the
# Lottery Ticket Hypothesis and Iterative Magnitude Pruning* (and **Figs 28, 29, 31** for VGG-16):
# the training loss along the straight line $(1-\alpha) A + \alpha B$ between two solutions, for
# $\alpha$ from a little before 0 to a little past 1, and the **barrier height**: the highest loss
# between the two points minus the higher of their two losses.
#
# | figure | A | B |
# | --- | --- | --- |
# | Fig 12 | $W_{min(L-1)}$ | $W_{min(L)}$ (successive IMP levels) |
# | Fig 9 | $Pr_L(min(L-1))$ | $W_{RI(L)}$ (random re-initialization) |
# | Fig 17 | $W_{min(L)}$ / $Pr_L(min(L-1))$ | $W_{RP'(L)}$ / $W_{RP(L)}$ (random pruning, one-shot / iterative) |
# | Fig 19 | $W_{min(L)}$ | $W_{OS(L)}$ (one-shot magnitude pruning) |
#
# Every point of a line has its BatchNorm statistics recomputed on the analysis subset before its
# loss is measured (mode-connectivity practice); without it interpolated losses are meaningless.
# The baselines exist only at `baselines.levels` (notebook 02); their figures are drawn there.
#
# **What to look for.** A barrier between successive IMP solutions (Fig 12): they are distinct
# minima, not linearly connected in the loss. Small barriers from $W_{min(L)}$ to $W_{OS(L)}$ and
# to $W_{RP'(L)}$ (same sublevel set), a large one from $Pr_L(min(L-1))$ to $W_{RI(L)}$ and to
# $W_{RP(L)}$ (different sublevel sets). The paper's symbols are lost in its text for Fig 17; the
# kit reads it as the VGG-16 appendix's Fig 31 does (a huge barrier from $Pr_L(min(L-1))$ to the
# randomly pruned $W_{RP(L)}$), and the claim's source says so. The claim of Fig 19 is one of no
# barrier: it holds when the barrier's interval lies within the margin.

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
from lthkit.analysis import landscape as ls
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "06_barriers")
land = ls.Landscape(ctx)
show = P.levels(P.report.show_levels)
print(f"levels {levels}; {P.landscape.line_points} points from A to B, margin "
      f"{P.landscape.line_margin} past each end; {land.evaluator.x.shape[0]} examples")

# %%
# Every cached result this notebook shows (its plan): computed here where the run folder
# does not hold it yet (lthkit-report on Ray computes them before the notebooks run).
from lthkit.analysis.plans import plan_06

lk.compute(ctx, plan_06(ctx));

# %% [markdown]
# ## Fig 12: successive IMP solutions, $W_{min(L-1)}$ to $W_{min(L)}$

# %%
lines = land.lines_of(["fig12"], levels)
fig = plots.line_figure([ln for lv in levels for ln in lines["fig12", lv]],
                        title=ls.LINE_FIGURE_TITLES["fig12"])
ctx.store.save_figure(fig, "fig12_barriers.png")


# %%
def render12(level: int):
    return plots.line_figure(lines["fig12", level], title=f"Fig 12, level {level - 1} to {level}")


plots.save_each(ctx.store, render12, levels, "fig12_barrier_level{:02d}.png")
lk.level_picker(render12, levels, interactive, static=[lv for lv in show if lv in levels])

# %% [markdown]
# ## Figs 9, 17, 19: to the baselines
# Drawn at the levels where notebook 02 trained the baselines they need.

# %%
BASELINE_FIGURES = [f for f in ls.BARRIER_FIGURES if f != "fig12"]
lines |= land.lines_of(BASELINE_FIGURES, levels)
figure_levels = {f: [lv for g, lv in lines if g == f] for f in BASELINE_FIGURES}
for f in BASELINE_FIGURES:
    print(f"{ls.LINE_FIGURE_TITLES[f]}: levels "
          f"{figure_levels[f] or 'none (run notebooks/02_baselines.ipynb)'}")


# %%
def render_baselines(level: int):
    drawn = [ln for f in BASELINE_FIGURES for ln in lines.get((f, level), [])]
    return plots.line_figure(drawn, title=f"Figs 9, 17, 19, level {level}")


baseline_levels = sorted({lv for f in BASELINE_FIGURES for lv in figure_levels[f]})
for f in BASELINE_FIGURES:
    plots.save_each(ctx.store, lambda lv, f=f: plots.line_figure(
        lines[f, lv], title=f"{ls.LINE_FIGURE_TITLES[f]}, level {lv}"),
        figure_levels[f], f + "_barrier_level{:02d}.png")
lk.level_picker(render_baselines, baseline_levels, interactive,
                static=[lv for lv in show if lv in baseline_levels] or baseline_levels[-1:])

# %% [markdown]
# ## Barrier heights
# Two heights per line, on the segment between A and B (α in [0, 1]):
# - `barrier`: the highest loss minus the higher endpoint's;
# - `barrier_linear`: the most the loss rises above the straight line between the two end losses,
#   $\max_\alpha\, \mathcal{L}(\alpha) - ((1-\alpha)\mathcal{L}_A + \alpha\mathcal{L}_B)$
#   (Frankle et al. 2020).
#
# Every barrier claim of this notebook (Figs 9, 12, 17, 19) judges `barrier_linear`: the ends of
# these lines have unequal losses (a level and the next, a solution and a baseline), and a bump
# that stays below the higher end is invisible to `barrier`, so "there is a barrier" could not
# fail on it. Its margin is `claims.margins.barrier` (default 1%) of the chance-level loss
# ln(classes), a scale that does not vanish as training converges.

# %%
barriers = ls.barrier_table((f, lv, ln) for (f, lv), group in lines.items() for ln in group)
ctx.store.save_table(barriers, "barriers.csv")
ctx.store.save_figure(plots.barrier_summary(
    barriers, title=P.model.arch, others=replicates.tables_across(ctx, "barriers.csv")[1:]),
    "barriers.png")
barriers.style.format(precision=4)

# %% [markdown]
# ## Result 4: generalization between successive solutions
# "These loss barriers are large enough to prevent SGD from crossing over and small enough to
# have almost similar generalization performance all over the region between these solutions."
# The test accuracy along Fig 12's lines (`landscape.line_test_examples` test images; each point
# normalized as on the training side, never with statistics of the test images): at both ends,
# its lowest point between them, and how far that dips below the lower end.

# %%
test_lines = [("fig12", lv, land.line_test(*ls.figure_ends("fig12", lv)[0])) for lv in levels]
generalization = ls.line_test_table(test_lines)
ctx.store.save_table(generalization, "fig12_test_accuracy.csv")
generalization.style.format(precision=4)

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the main tables above, their mean and the
# 95% t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "barriers.csv", columns=["barrier", "max_loss"], key=["figure", "series", "level"]);

# %% [markdown]
# ## Claims: does each statement hold on this run?
# Each statement this notebook tests, as a comparison of two measured sides per level, judged
# across the replicates of the run (`run.replicates`; with one replicate every verdict is
# inconclusive). The rule is printed under the table; published numbers never enter a verdict.
# The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "06_barriers")
print(paper_claims.rule_text(ctx, "06_barriers"))
claims_table
