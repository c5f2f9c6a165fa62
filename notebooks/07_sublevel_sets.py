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
# # 07 · Sublevel sets and loss surfaces
#
# Reproduces **Fig 13** of Saleem, Ahuja, Prasad and Lall, *Insights into the Lottery Ticket
# Hypothesis and Iterative Magnitude Pruning*: the training loss on the plane through three IMP
# solutions A, B, C, with axes $B-A$ and $C-A$ made orthonormal by Gram-Schmidt (Appendix I: a
# point $W$ lands at $\alpha = \langle W-A, u\rangle$, $\beta = \langle W-A, v\rangle$). Every other
# IMP solution and the baselines $W_{RI}$, $W_{RP}$, $W_{RP'}$, $W_{OS}$ are projected on the plane
# and marked, with their distance from it; the dark region is the sublevel set
# $\{W : \mathcal{L}(W) \le c\}$ with $c$ the largest loss of the IMP solutions (or
# `landscape.sublevel_loss`). Which three solutions span the paper's plane was lost in the
# extraction; by default A, B, C are $W_{min}$ of level 0, of the middle and of the last analysis
# level (`landscape.plane_levels`).
#
# Then, per level, the loss surface around $W_{min(L)}$ on two random **filter-normalized**
# directions, made as Li et al. 2018's code makes them (tomgoldstein/loss-landscape,
# `--dir_type weights --xnorm filter --xignore biasbn`): each filter of a direction has the norm
# of the same filter of the weights, biases and BatchNorm are not perturbed, and by default
# * BatchNorm keeps **the solution's running statistics** at every point (eval mode, as Li et al.;
#   `landscape.surface_bn: recalibrate` recomputes them at each point, as lines and planes do),
# * the directions are **dense**: every weight moves, pruned or not (`landscape.surface_directions:
#   masked` keeps the solution on its subnetwork, the kit's extension),
# * one raw draw serves **every level** (`landscape.surface_draw: per_level` draws per level).
#
# As Bain, *Visualizing the Loss Landscape of Winning Lottery Tickets*, does, a surface is
# evaluated on a small subsample (`landscape.surface_examples` images of the training set; Li et
# al. used the whole training set on a 51 x 51 grid): each figure says under it what it was
# computed on and how that differs from Li et al. The last figure shows how a surface settles as
# the subsample grows.
#
# On the figure A, B, C are stars, the other IMP solutions circles shaded by level (darker:
# later), and each baseline has the marker and colour of its strategy in Fig 2 (notebook 02). A
# point that does not lie on the plane is drawn **hollow** at its projection, and the legend gives
# its distance $d$ from the plane.
#
# **What to look for.** All IMP solutions inside one connected dark region (one sublevel set);
# $W_{RI}$, $W_{RP}$ and $W_{RP'}$ outside it, $W_{OS}$ inside (Fig 13; the paper's symbols are
# lost in its text: the claims table's sources quote the sentences and say how each is read, e.g.
# $W_{RP'}$ is the one-shot random network that differs from $W_{OS}$ only by its mask, and the
# text sets it outside while $W_{OS}$ lies inside). A marker's position is a
# projection: a point far from the plane (large distance) can sit over the dark region without
# being in it, so the table lists each point's own loss. The surfaces of winning tickets stay
# convex around the solution as levels go up (Bain, Fig 6).

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
from lthkit.analysis.landscape import PointRef
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "07_sublevel_sets")
land = ls.Landscape(ctx)
abc, extras = land.plane_points(levels)
print("plane through " + ", ".join(f"{n} = {r.label}" for n, r in zip("ABC", abc)))
print("projected: " + (", ".join(r.label for r in extras) or "nothing else"))
if not any(r.kind != "imp" for r in extras):
    print("no baselines yet: run notebooks/02_baselines.ipynb to project them too")

# %%
# Every cached result this notebook shows (its plan): computed here where the run folder
# does not hold it yet (lthkit-report on Ray computes them before the notebooks run).
from lthkit.analysis.plans import plan_07

lk.compute(ctx, plan_07(ctx));

# %% [markdown]
# ## Fig 13: the plane through A, B, C and the sublevel set

# %%
plane = land.plane(*abc, extras=extras)
sublevel = land.sublevel_loss(plane)
fig = plots.plane_figure(plane, sublevel, title="Fig 13: A = {}, B = {}, C = {}".format(
    *(r.math for r in abc)))
ctx.store.save_figure(fig, "fig13_sublevel_set.png")

# %% [markdown]
# Coordinates on the plane, distance from it, and each point's own training loss (on the same
# examples): `loss_below_sublevel` says whether the point's loss is below c;
# `in_connected_sublevel_set` whether it lies in the *connected* part of {loss <= c} that holds
# the three IMP solutions spanning the plane (the paper's "same connected loss sublevel set"):
# `joins_at` is the level at which it joins them (the lowest path loss on the plane's grid to its
# projection, and at least its own loss). The claims of Result 5 judge `joins_at` against c.

# %%
points = ls.plane_table(plane, sublevel)
ctx.store.save_table(points, "fig13_points.csv")
points.style.format(precision=4)

# %% [markdown]
# ## Filter-normalized loss surfaces around $W_{min(L)}$ (Li et al. 2018)

# %%
surface_levels = sorted({0, *levels})
surfaces = {lv: land.surface(PointRef("imp", lv)) for lv in surface_levels}
print(ls.surface_recipe(surfaces[surface_levels[0]], "li"))


def render_surface(level: int):
    s = surfaces[level]
    return plots.surface_figure(s, title=f"{s['math']}: Li et al.'s filter-normalized surface",
                                paper="li")


plots.save_each(ctx.store, render_surface, surface_levels, "surface_level{:02d}.png")
lk.level_picker(render_surface, surface_levels, interactive,
                static=[lv for lv in P.levels(P.report.show_levels) if lv in surface_levels])

# %% [markdown]
# ## How a surface settles as the subsample grows (Bain, Fig 2)
# The same directions around the last level's solution, evaluated on more and more examples.

# %%
if P.landscape.surface_sweep:
    sweep = [land.surface(PointRef("imp", levels[-1]), examples=n)
             for n in sorted(P.landscape.surface_sweep)]
    fig = plots.surface_sweep(sweep, title=f"W_min({levels[-1]}) on growing subsamples",
                              paper="li")
    ctx.store.save_figure(fig, f"surface_sweep_level{levels[-1]:02d}.png")
else:
    print("landscape.surface_sweep is empty: skipped")

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the main tables above, their mean and the
# 95% t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "fig13_points.csv", columns=["loss", "distance_from_plane"]);

# %% [markdown]
# ## Claims: does each statement hold on this run?
# Each statement this notebook tests, as a comparison of two measured sides per level, judged
# across the replicates of the run (`run.replicates`; with one replicate every verdict is
# inconclusive). The rule is printed under the table; published numbers never enter a verdict.
# The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "07_sublevel_sets")
print(paper_claims.rule_text(ctx, "07_sublevel_sets"))
claims_table
