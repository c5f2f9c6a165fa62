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
# # 11 · Loss landscapes of winning and random tickets (Bain)
#
# Reproduces `papers/bain_loss_landscape_winning_tickets.txt` with LeNet-5 on CIFAR-10 (Adam, a
# large batch, 10% of the remaining weights pruned per round, layer by layer, rewinding to
# initialization, the best model of each round kept by early stopping):
#
# * **Bain Figs 6 and 7:** filter-normalized 2D loss surfaces (Li et al. 2018) of the IMP ticket
#   (his Fig 6) and of a random ticket of the same sparsity (his Fig 7: a random mask with the
#   IMP mask's per-layer counts, on the same initialization), side by side on one colour scale,
#   with each ticket's test accuracy in its title. The level picker chooses the sparsity.
#   *Look for:* the IMP ticket's surface deeper and sharper than the random ticket's, the random
#   ticket's "vastly more shallow"; both flatter and shallower as pruning goes on.
# * **Bain Fig 5:** training curves of both kinds of ticket, and the test-accuracy gap against
#   % of weights left. *Look for:* a gap that opens around 50% of weights left and keeps growing
#   (16 points at the end in Bain's run), and an IMP ticket at ~3% of weights still as good as
#   the dense network.
# * **Bain Fig 2:** how one surface settles as the number of examples it is evaluated on grows,
#   the reason a subsample (250 examples) is enough.
#
# **Examples, directions and kept models.** Bain evaluates every surface on a random sample of
# 250 *test* images (`bain.surface_split: test`, the default; `train` uses the analysis subset of
# the training set instead) on a 125 x 125 grid. His directions are those of Li et al.'s code
# (`--dir_type weights --xnorm filter --xignore biasbn`): **dense**, a Gaussian entry on every
# weight, pruned or not, so a ticket is moved off its subnetwork, each filter scaled to the norm
# of the ticket's filter; and **one seed for every model**, so every level and both tickets
# share one raw draw (`bain.directions: dense` and `bain.draw: shared`, the defaults;
# `bain.directions: masked` zeroes each ticket's pruned weights, the kit's extension, and
# `bain.draw: per_level` draws per level). He keeps each round's best model by early stopping on
# validation loss (`bain.early_stopping`: a validation split carved from the training set, never
# trained on; the kept model is the epoch of lowest validation loss, and the next round prunes
# it). The line printed below says which were used, and each figure says under it what it was
# computed on and how that differs from Bain's.
#
# Parameters: the `bain` section (data, model, training, IMP rounds, early stopping, levels
# shown, surface split, directions, draw, subsample sizes) and, for the surfaces,
# `landscape.surface_*` (resolution, span, examples, BatchNorm handling).

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
from lthkit import plots, tickets
from lthkit.analysis.landscape import PointRef
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "11_ticket_landscapes")
print(f"run folder: {ctx.store.root / 'bain'}; data: {P.bain.data.dataset}, "
      f"{P.bain.imp.levels} rounds of {P.bain.imp.prune_fraction:.0%} ({P.bain.imp.scope})")
print(tickets.bain_protocol(P))

# %% [markdown]
# ## IMP tickets and random tickets
# Trained once into `<run>/bain/` (resumable; a rerun reuses them). `ticket_vs_dense` is the
# IMP ticket's test accuracy minus the dense network's; `*_kept_epoch` the epoch early stopping
# kept.

# %%
sub = tickets.bain_tickets(ctx)
table = tickets.accuracy_table(sub)
ctx.store.save_table(table, "bain_accuracy.csv")
table.round(4)

# %% [markdown]
# ## Bain Fig 5 and Section 7: the gap in test accuracy against sparsity

# %%
ctx.store.save_figure(plots.ticket_gap(table, title="LeNet-5:"), "bain_fig5_gap.png")

# %% [markdown]
# ## Bain Figs 6 and 7: surfaces of the IMP and the random ticket
# Both tickets of a level share the two raw random draws (with `bain.draw: shared`, every level
# does); each direction is normalized filter by filter to the ticket's weights, on every weight
# (dense, Bain's) or only on the ticket's survivors (masked). The table puts numbers on Bain's
# words per level, for both tickets: `center_loss` at the ticket, `rise` (the mean loss on the
# plotted window's border minus the center's: small is shallow) and `curvature` (the second
# difference at the center: small is flat); `directions` and `draw` say how they were made.

# %%
land = tickets.bain_landscape(sub)
shown = tickets.shown_levels(sub)
surfaces = {lv: tickets.ticket_surfaces(land, lv) for lv in shown}


def render_pair(level: int):
    pair = surfaces[level]
    examples = pair["ticket"][0]["examples"]
    return plots.ticket_surfaces(pair, suptitle=f"Bain Figs 6 and 7, level {level}: {examples} "
                                 f"{P.bain.surface_split} examples")


if shown:
    plots.save_each(ctx.store, render_pair, shown, "bain_surfaces_level{:02d}.png")
    lk.level_picker(render_pair, shown, interactive)
else:
    print("no level of bain.show_levels has both tickets: add levels >= 1 to bain.show_levels")
surface_numbers = tickets.surface_table(surfaces)
ctx.store.save_table(surface_numbers, "bain_surfaces.csv")
surface_numbers.round(4)

# %% [markdown]
# The dense network (level 0) for reference: the surface both kinds of ticket start from.

# %%
dense = land.surface(PointRef("imp", 0))
ctx.store.save_figure(plots.ticket_surface(dense, title="unpruned LeNet-5 (level 0)"),
                      "bain_surface_dense.png")

# %% [markdown]
# ## Bain Fig 5: training curves of both tickets
# A star marks the epoch early stopping kept (when it is on).

# %%
def render_curves(level: int):
    return plots.accuracy_vs_iterations(tickets.ticket_histories(sub, level),
                                        title=f"level {level}: test accuracy while training",
                                        kept=tickets.kept_iterations(sub, level))


if shown:
    plots.save_each(ctx.store, render_curves, shown, "bain_training_level{:02d}.png")
    lk.level_picker(render_curves, shown, interactive)

# %% [markdown]
# ## Bain Fig 2: how a surface settles as the subsample grows
# The IMP ticket of the sparsest level shown, on more and more examples of the surfaces' split
# (`bain.subsample_sizes`, capped at what the split holds).

# %%
last = tickets.sweep_level(shown)
sweep = [land.surface(PointRef("imp", last), examples=n) for n in tickets.sweep_sizes(sub)]
ctx.store.save_figure(plots.ticket_surface_sweep(sweep, title=f"IMP ticket of level {last}"),
                      f"bain_fig2_subsample_level{last:02d}.png")

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the main tables above, their mean and the
# 95% t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "bain_accuracy.csv", columns=["ticket_test_acc", "random_test_acc", "gap"])
replicates.show(ctx, "bain_surfaces.csv");

# %% [markdown]
# ## Claims: does each statement hold on this run?
# Each statement this notebook tests, as a comparison of two measured sides per level, judged
# across the replicates of the run (`run.replicates`; with one replicate every verdict is
# inconclusive). The rule is printed under the table; published numbers never enter a verdict.
# The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "11_ticket_landscapes")
print(paper_claims.rule_text(ctx, "11_ticket_landscapes"))
claims_table
