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
# initialization):
#
# * **Bain Figs 3 and 4:** filter-normalized 2D loss surfaces (Li et al. 2018) of the IMP ticket
#   and of a random ticket of the same sparsity (a random mask with the IMP mask's per-layer
#   counts, on the same initialization), side by side on one colour scale, with each ticket's
#   test accuracy in its title. The level picker chooses the sparsity. *Look for:* at high
#   sparsity the random ticket's basin is sharper and higher than the IMP ticket's.
# * **Training curves** of both kinds of ticket. *Look for:* the IMP ticket trains faster and
#   further.
# * **Bain Fig 5:** test accuracy of both tickets against % of weights left, and the gap.
#   *Look for:* a gap that opens as sparsity grows.
# * **Bain Fig 2:** how one surface settles as the number of examples it is evaluated on grows,
#   the reason a subsample (250 examples by default) is enough.
#
# Parameters: the `bain` section (data, model, training, IMP rounds, levels shown, subsample
# sizes) and, for the surfaces, `landscape.surface_*` (resolution, span, examples).

# %% tags=["parameters"]
params_file = None  # parameter YAML; None: $LTHKIT_PARAMS, else params/smoke.yaml
interactive = None  # level picker widgets; None: widgets unless papermill injected a YAML
# `papermill -f preset.yaml` injects the preset's sections here:
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
mnist = None
bain = None

# %%
import lthkit as lk
from lthkit import plots, tickets
from lthkit.landscape import Landscape, PointRef

P = lk.notebook_params(params_file, globals())
interactive = lk.interactive_default(interactive, globals())
ctx = lk.open_run(P, create=True)
print(f"run folder: {ctx.store.root / 'bain'}; data: {P.bain.data.dataset}, "
      f"{P.bain.imp.levels} rounds of {P.bain.imp.prune_fraction:.0%} ({P.bain.imp.scope})")

# %% [markdown]
# ## IMP tickets and random tickets
# Trained once into `<run>/bain/` (resumable; a rerun reuses them).

# %%
sub = tickets.bain_tickets(ctx)
table = tickets.accuracy_table(sub)
ctx.store.save_table(table, "bain_accuracy.csv")
table.round(4)

# %% [markdown]
# ## Bain Fig 5: the gap in test accuracy against sparsity

# %%
ctx.store.save_figure(plots.ticket_gap(table, title="LeNet-5:"), "bain_fig5_gap.png")

# %% [markdown]
# ## Bain Figs 3 and 4: surfaces of the IMP and the random ticket
# Both tickets of a level share the two random draws; each direction is zero on the ticket's own
# pruned weights and normalized filter by filter to the ticket's weights.

# %%
land = Landscape(sub)
shown = tickets.bain_pairs(sub, sub.params.levels(P.bain.show_levels))
surfaces = {lv: tickets.ticket_surfaces(land, lv) for lv in shown}


def render_pair(level: int):
    pair = surfaces[level]
    return plots.surfaces_side_by_side([s for s, _ in pair], [t for _, t in pair],
                                       suptitle=f"level {level}: {pair[0][0]['examples']} examples")


if shown:
    plots.save_each(ctx.store, render_pair, shown, "bain_surfaces_level{:02d}.png")
    lk.level_picker(render_pair, shown, interactive)
else:
    print("no level of bain.show_levels has both tickets: add levels >= 1 to bain.show_levels")

# %% [markdown]
# The dense network (level 0) for reference: the surface both kinds of ticket start from.

# %%
dense = land.surface(PointRef("imp", 0))
ctx.store.save_figure(plots.surface_figure(dense, title="dense LeNet-5"), "bain_surface_dense.png")

# %% [markdown]
# ## Training curves of both tickets

# %%
def render_curves(level: int):
    return plots.accuracy_vs_iterations(tickets.ticket_histories(sub, level),
                                        title=f"level {level}: test accuracy while training")


if shown:
    plots.save_each(ctx.store, render_curves, shown, "bain_training_level{:02d}.png")
    lk.level_picker(render_curves, shown, interactive)

# %% [markdown]
# ## Bain Fig 2: how a surface settles as the subsample grows
# The IMP ticket of the sparsest level shown, on more and more examples of the analysis subset
# (`bain.subsample_sizes`; sizes above `analysis.subset_size` are capped at it).

# %%
sizes = sorted({min(n, P.analysis.subset_size) for n in P.bain.subsample_sizes})
last = shown[-1] if shown else 0
sweep = [land.surface(PointRef("imp", last), examples=n) for n in sizes]
ctx.store.save_figure(plots.surface_sweep(sweep, title=f"IMP ticket of level {last}"),
                      f"bain_fig2_subsample_level{last:02d}.png")
