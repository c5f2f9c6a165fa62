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
# # 01 · Iterative magnitude pruning with weight rewinding
#
# Reproduces **Fig 1** of Saleem, Ahuja, Prasad and Lall, *Insights into the Lottery Ticket
# Hypothesis and Iterative Magnitude Pruning* (and **Fig 23** for VGG-16 with `vgg16_paper.yaml`):
# the final training loss and test accuracy of the IMP solution $W_{min(L)}$ at every level $L$.
#
# Level 0 trains the dense network and keeps $W_{rewind}$, its weights after $k$ iterations.
# Level $L$ prunes the smallest 20% (ResNet-20) of the weights still alive in $W_{min(L-1)}$ and
# trains $m_L \odot W_{rewind}$ from iteration $k$ to the end of the schedule. Every later notebook
# reads what this one stores in the run folder: masks, $W_{min(L)}$, per-epoch weights, metrics.
#
# **What to look for.** Test accuracy stays at the dense network's level for many levels (the
# tickets are *matching*) and falls only when few weights are left; the training loss of
# $W_{min(L)}$ changes little from level to level. Stopping this notebook at any moment loses
# nothing: running it again skips finished levels and resumes the level in progress from its last
# finished epoch.

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
from lthkit.train.training import precision_note
from lthkit.verdicts import replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "01_train_imp")
print(f"run folder: {ctx.store.root}\nparameters: {P.source}\ndevice: {ctx.device}")
print(f"{P.model.arch} (width {P.model.width or 'paper'}) on {P.data.describe()}: "
      f"{P.imp.levels} levels of {P.imp.prune_fraction:.0%}, rewind to iteration "
      f"{P.imp.rewind_iteration}, {P.train.epochs} epochs per level\n"
      f"{precision_note(P.train, ctx.device)}")

# %% [markdown]
# ## Train every level
# Finished levels are read from the run folder; the rest are trained (one progress bar per level).

# %%
results = lk.run_imp(ctx)

# %% [markdown]
# ## Fig 1: training loss and test accuracy against level
# Training loss and accuracy are measured on the whole training set in eval mode, without
# augmentation, at the end of each level. The accuracy axis stays within 0-100% and spans at
# least 10 points, so that a difference of a few test images does not fill it; when it does not
# run from 0 to 100 its label says where it runs.

# %%
summary = results.summary()
ctx.store.save_table(summary, "fig01_imp_levels.csv")
fig = plots.fig01_levels(summary, title=P.model.arch)
ctx.store.save_figure(fig, "fig01_loss_accuracy.png")
summary.style.format(precision=4)

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the table above, their mean and the 95%
# t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "fig01_imp_levels.csv", columns=["train_loss", "test_acc"]);

# %% [markdown]
# ## Training curves, level by level
# Running training loss (augmented batches) and test accuracy per epoch of each level's run.

# %%
lk.level_picker(lambda level: plots.training_curves(results.metrics(level)["history"],
                                                    title=f"level {level}"),
                results.levels_done(), interactive, static=P.levels(P.report.show_levels))
