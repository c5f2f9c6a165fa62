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
# # 08 · Pruning choices and the volume of the solutions they lead to
#
# Reproduces **Figs 10, 11, 16, 18, 20 and 21** of Saleem, Ahuja, Prasad and Lall, *Insights into
# the Lottery Ticket Hypothesis and Iterative Magnitude Pruning* (Results 2, 3, 6 and 7): the
# top-$k$ positive eigenvalues of the Hessian of the training loss at the IMP solution
# $W_{min(L)}$ against the solution another pruning choice leads to, each with its inverse volume
# $V'(k) = \sum_{i \le k} \log \lambda_i$ (paper: $k = 100$):
#
# | figure | compared with $W_{min(L)}$ | the choice |
# | --- | --- | --- |
# | Fig 10 | $W_{RI(L)}$ | random re-initialization instead of rewinding (Result 2) |
# | Fig 11 | $W_{OS(L)}$ | one-shot pruning instead of iterative (Result 3) |
# | Fig 16 | $Pr_L(min(L-1))$ against the band-pruned projection | pruning a band of slightly larger weights (ranks $p$..$2p$) instead of the smallest (Result 6) |
# | Fig 18 | $W_{RP(L)}$ | random pruning instead of magnitude pruning (Result 6) |
# | Fig 20 | $W_{OS(L)}$ | the pair of Fig 19 (Result 6) |
# | Fig 21 | $W_{FT(L)}$ | fine-tuning instead of rewinding (Result 7) |
#
# Each point is measured in the space of its own mask (the same number of coordinates as level
# $L$), on the same fixed training subset as notebook 04, BatchNorm statistics recomputed at the
# point, top-$k$ eigenvalues by Lanczos (the same engine and cache: spectra notebook 04 made are
# read, not recomputed). The baselines come from notebook 02; a figure is drawn at the levels where
# its baseline has been trained. The symbols of Fig 20 were lost in the text extraction; following
# `REPRODUCTION.md` it repeats the one-shot comparison, and the summary table at the end also holds
# the other baselines (learning-rate rewinding, one-shot random pruning $W_{RP'(L)}$).
#
# **What to look for.** In every figure the eigenvalues at $W_{min(L)}$ are the smaller ones and its
# $V'$ the smallest: the basin of the IMP solution is the largest. Random re-initialization, random
# pruning, one-shot pruning and fine-tuning all land in sharper minima. In Fig 16, pruning the band
# of slightly larger weights gives a much larger $V'$ (a smaller volume) than pruning the smallest
# ones.

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
from lthkit.analysis import hessian as hs
from lthkit.train.baselines import BaselineResults
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "08_pruning_choices")
band_levels = P.levels(P.hessian.band_levels, minimum=1)
baseline_results = BaselineResults(ctx.store)
H = hs.HessianAnalysis(ctx)
k = P.hessian.k
show = P.levels(P.report.show_levels)
figure_levels = {n: hs.baseline_levels(baseline_results, kind, levels)
                 for n, (kind, _) in hs.PRUNING_CHOICE_FIGURES.items()}
print(f"levels {levels}; top-{k} eigenvalues on {H.subset_size} training examples; band pruning "
      f"(Fig 16) at levels {band_levels}")
for n, (kind, what) in hs.PRUNING_CHOICE_FIGURES.items():
    print(f"Fig {n}: W_min(L) against {what}: levels "
          f"{figure_levels[n] or 'none (run notebooks/02_baselines.ipynb)'}")

# %%
# Every cached result this notebook shows (its plan): computed here where the run folder
# does not hold it yet (lthkit-report on Ray computes them before the notebooks run).
from lthkit.analysis.plans import plan_08

lk.compute(ctx, plan_08(ctx));

# %% [markdown]
# ## The spectra
# Every point this notebook compares, one row each: products used, largest residual, loss.

# %%
points = hs.choice_points(imp_results, baseline_results, sorted({*levels, *band_levels}),
                          P.baselines.kinds, band_levels, P.imp.prune_fraction, P.imp.scope)
spectra_report = H.report(hs.unique_points(points))
ctx.store.save_table(spectra_report, "pruning_choices_spectra_report.csv")
spectra_report.style.format(precision=4)


# %%
def render_choice(figure: int, level: int):
    return plots.choice_eigenvalues(H, imp_results, baseline_results, figure, level, k)


def draw(figure: int):
    drawn = figure_levels[figure]
    plots.save_each(ctx.store, lambda lv: render_choice(figure, lv), drawn,
                    f"fig{figure}_eigenvalues_level{{:02d}}.png")
    return lk.level_picker(lambda lv: render_choice(figure, lv), drawn, interactive,
                           static=[lv for lv in show if lv in drawn] or drawn[-1:])


# %% [markdown]
# ## Fig 10: random re-initialization (Result 2)
# $W_{RI(L)}$: the mask $m_L$ with survivors re-drawn from a fresh initialization, retrained.

# %%
draw(10)

# %% [markdown]
# ## Fig 11: one-shot pruning (Result 3)
# $W_{OS(L)}$: $W_{min(0)}$ magnitude-pruned in one step to the sparsity of $m_L$, rewound, retrained.

# %%
draw(11)

# %% [markdown]
# ## Fig 16: pruning the smallest weights against a band of slightly larger ones (Result 6)
# From $W_{min(L-1)}$, prune the smallest fraction $p$ of the alive weights (the IMP projection
# $Pr_L(min(L-1))$) or the next band, ranks $p$ to $2p$; both projected points are measured in the
# space of their own mask, without retraining.

# %%
def render16(level: int):
    spectra = H.eigenvalues(hs.imp_projection(imp_results, level),
                            hs.band_projection(imp_results, level, P.imp.prune_fraction,
                                               P.imp.scope))
    return plots.eigenvalue_comparison(spectra, k, title=f"Fig 16, level {level}: pruning the "
                                       f"smallest {P.imp.prune_fraction:.0%} against the next band")


plots.save_each(ctx.store, render16, band_levels, "fig16_eigenvalues_level{:02d}.png")
lk.level_picker(render16, band_levels, interactive,
                static=[lv for lv in show if lv in band_levels] or band_levels[-1:])

# %% [markdown]
# ## Fig 18: random pruning (Result 6)
# $W_{RP(L)}$: as many weights pruned from $W_{min(L-1)}$'s alive set as IMP prunes, chosen at
# random; rewound, retrained.

# %%
draw(18)

# %% [markdown]
# ## Fig 20: the pair of Fig 19 (Result 6)
# $W_{min(L)}$ and $W_{OS(L)}$ lie in the same sublevel set (a small barrier in Fig 19, notebook 06),
# yet the basin of $W_{OS(L)}$ is smaller.

# %%
draw(20)

# %% [markdown]
# ## Fig 21: fine-tuning (Result 7)
# $W_{FT(L)}$: $m_L \odot W_{min(L-1)}$ trained further at a small fixed learning rate, no rewinding.

# %%
draw(21)

# %% [markdown]
# ## Every pruning choice, level by level
# $V'(k)$ (smaller: larger volume) and the training loss at each point; NaN where notebook 02 has
# not trained that baseline at that level.

# %%
volumes, losses = hs.choices_tables(H, points)
ctx.store.save_table(volumes, "pruning_choices_volume.csv")
ctx.store.save_table(losses, "pruning_choices_loss.csv")
names = hs.choice_names(points)  # the V'(k) columns; entered, bound and flags stand beside
fig = plots.volume_by_level(volumes, names, names,
                            title=f"V'({k}) of every pruning choice",
                            others=replicates.tables_across(ctx, "pruning_choices_volume.csv")[1:])
ctx.store.save_figure(fig, "pruning_choices_volume.png")
volumes[names].style.format(precision=3)

# %%
losses.style.format(precision=4)

# %% [markdown]
# ## Result 3: pruning more in one step
# "If too many weights are pruned out in a step, it leads to a bigger increase in the training
# loss and a bigger decrease in volume." A new, cheap experiment (no retraining): $W_{min}(L-1)$
# pruned of each fraction of its alive weights in one step (`hessian.sweep_fractions`, at level
# `hessian.sweep_level`, else the first analysis level); its training loss and $V'(k)$ in its own
# space. A larger $V'$ is a smaller volume.

# %%
sweep_level = (P.hessian.sweep_level or levels[0]) if P.hessian.sweep_fractions else levels[0]
sweep = hs.prune_fraction_sweep(H, imp_results, sweep_level, P.hessian.sweep_fractions,
                                P.imp.scope)
ctx.store.save_table(sweep, "result3_prune_fraction.csv")
if len(sweep):
    fig = plots.prune_fraction_sweep_figure(
        sweep, title=f"Result 3: W_min({sweep_level - 1}) pruned in one step",
        others=replicates.tables_across(ctx, "result3_prune_fraction.csv")[1:])
    ctx.store.save_figure(fig, "result3_prune_fraction.png")
sweep.round(4)

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the main tables above, their mean and the
# 95% t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "pruning_choices_volume.csv", columns=names)
replicates.show(ctx, "pruning_choices_loss.csv");

# %% [markdown]
# ## Claims: does each statement hold on this run?
# Each statement this notebook tests, as a comparison of two measured sides per level, judged
# across the replicates of the run (`run.replicates`; with one replicate every verdict is
# inconclusive). The rule is printed under the table; published numbers never enter a verdict.
# The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "08_pruning_choices")
print(paper_claims.rule_text(ctx, "08_pruning_choices"))
claims_table
