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
# # 09 · Appendix II: VGG-16 on CIFAR-10
#
# Reproduces **Figs 23-32 and Tables VI-IX** of Saleem, Ahuja, Prasad and Lall with the VGG-16
# run of `params/vgg16_paper.yaml` (12 levels of 40%, the comparisons at levels 1, 6, 11/12).
# Notebooks 01 and 02 of the same run train the IMP levels and the baselines; this notebook calls
# the lthkit analyses of notebooks 03-08 on that run:
#
# | appendix | main-text twin | what | look for |
# | --- | --- | --- | --- |
# | Fig 23 | Fig 1 | training loss, test accuracy of $W_{min(L)}$ per level | accuracy holds, then falls |
# | Fig 24 | Fig 2 | every pruning strategy per level | IMP-WR best |
# | Fig 25 | Fig 4 | log loss per epoch, level $L$ against level $L-1$ projected | level $L$ path steeper |
# | Fig 26, Table VI | Fig 5, Table I | eigenvalues in level $L$ space: $W_{min(L)}$, $Pr_L(min(L-1))$ | $W_{min(L)}$ smaller $V'$ |
# | Fig 27, Table VII | Fig 7, Table III | level $L-1$ space: $W_{min(L-1)}$, $RPr_{L-1}(min(L))$ | $W_{min(L-1)}$ smaller $V'$ |
# | Fig 28 | Fig 12 | line $W_{min(L-1)}$ – $W_{min(L)}$ | a barrier |
# | Fig 29 | Fig 9 | line $Pr_L(min(L-1))$ – $W_{RI}(L)$ | a huge barrier |
# | Fig 30, Table VIII | Fig 10 | eigenvalues at $W_{min(L)}$ and $W_{RI}(L)$ | $W_{RI}$ larger eigenvalues |
# | Fig 31 | Fig 17 | line $Pr_L(min(L-1))$ – $W_{RP}(L)$ | a huge barrier |
# | Fig 32, Table IX | Fig 18 | eigenvalues at $W_{min(L)}$ and $W_{RP}(L)$ | $W_{RP}$ larger eigenvalues |
#
# Memory: a Lanczos basis of `hessian.max_iterations` vectors of VGG-16's 15M parameters is
# several GB; `hessian.basis_device: auto` keeps it on the GPU when it fits there and on the CPU
# otherwise, and the spectra report below says where each one lived.

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
from lthkit import geometry, plots
from lthkit import hessian as hs
from lthkit import landscape as ls
from IPython.display import display
from lthkit.baselines import BaselineResults
from lthkit.landscape import PointRef

NOTEBOOK = "notebooks/09_vgg16_appendix.ipynb"
P = lk.notebook_params(params_file, globals())
interactive = lk.interactive_default(interactive, globals())
ctx = lk.open_run(P, needed_by=NOTEBOOK)
imp_results = lk.ImpResults(ctx.store)
levels = P.levels(P.analysis.levels, minimum=1)
imp_results.require_levels(sorted({0, *levels, *(lv - 1 for lv in levels)}), NOTEBOOK)
baseline_results = BaselineResults(ctx.store)
H = hs.HessianAnalysis(ctx)
land = ls.Landscape(ctx)
k = P.hessian.k
print(f"{P.model.arch} (width {P.model.width or 'paper'}), {P.data.dataset}; appendix levels "
      f"{levels}; baselines at {baseline_results.levels() or 'none (run notebooks/02_baselines)'}")
if P.model.arch != "vgg16":
    print("note: this run is not VGG-16; the appendix's analyses run on it all the same")

# %% [markdown]
# ## Fig 23: IMP-WR levels (Fig 1 of the main text)

# %%
summary = imp_results.summary()
ctx.store.save_table(summary, "fig23_imp_levels.csv")
ctx.store.save_figure(plots.fig01_levels(summary, title=f"Fig 23: {P.model.arch} IMP-WR"),
                      "fig23_loss_accuracy.png")
summary.round(4)

# %% [markdown]
# ## Fig 24: IMP-WR against the other strategies (Fig 2)

# %%
strategies = baseline_results.summary(imp_results)
ctx.store.save_table(strategies, "fig24_strategies.csv")
ctx.store.save_figure(plots.fig02_strategies(strategies, title=f"Fig 24: {P.model.arch}"),
                      "fig24_strategies.png")

# %% [markdown]
# ## Fig 25: the path to $W_{min(L)}$ is steeper (Fig 4)
# Only levels whose per-epoch weights were kept, with those of the level before
# (`imp.trajectory_levels`).

# %%
trajectory_levels = [lv for lv in levels if imp_results.level(lv).start_file.exists()
                     and imp_results.level(lv - 1).start_file.exists()]
trajectories = {lv: geometry.trajectory_losses(ctx, ctx.evaluator, lv) for lv in trajectory_levels}
plots.save_each(ctx.store, lambda lv: plots.fig04_trajectory(trajectories[lv], lv),
                trajectory_levels, "fig25_trajectory_level{:02d}.png")
lk.level_picker(lambda lv: plots.fig04_trajectory(trajectories[lv], lv), trajectory_levels,
                interactive)

# %% [markdown]
# ## Spectra: cost, convergence, and where each Lanczos basis lived

# %%
choices = {lv: {"W_RI(L)": "random_reinit", "W_RP(L)": "random_prune"} for lv in levels}
choice_points = {lv: {name: hs.baseline_solution(baseline_results, kind, lv)
                      for name, kind in named.items() if (kind, lv) in baseline_results.available()}
                 for lv, named in choices.items()}
spectra_report = H.report([*hs.volume_points(imp_results, levels),
                           *(pt for named in choice_points.values() for pt in named.values())])
ctx.store.save_table(spectra_report, "appendix_spectra_report.csv")
spectra_report.style.format(precision=4)

# %% [markdown]
# ## Figs 26, 27 and Tables VI, VII: volume in the level $L$ and level $L-1$ spaces (Figs 5, 7)

# %%
def render26(level: int):
    spectra = H.eigenvalues(hs.imp_solution(imp_results, level),
                            hs.imp_projection(imp_results, level))
    return plots.eigenvalue_comparison(spectra, k, title=f"Fig 26, level {level} space")


def render27(level: int):
    spectra = H.eigenvalues(hs.imp_solution(imp_results, level - 1),
                            hs.imp_reverse_projection(imp_results, level))
    return plots.eigenvalue_comparison(spectra, k, title=f"Fig 27, level {level - 1} space")


plots.save_each(ctx.store, render26, levels, "fig26_eigenvalues_level{:02d}.png")
plots.save_each(ctx.store, render27, levels, "fig27_eigenvalues_level{:02d}.png")
lk.level_picker(render26, levels, interactive)
lk.level_picker(render27, levels, interactive)

# %%
table6, table7 = hs.volume_tables(H, imp_results, levels)
ctx.store.save_table(table6, "table6.csv")
ctx.store.save_table(table7, "table7.csv")
table6.style.format(precision=3)

# %%
table7.style.format(precision=3)

# %% [markdown]
# ## Figs 28, 29, 31: barriers along lines (Figs 12, 9, 17)

# %%
APPENDIX_LINES = {"fig28": "successive IMP levels", "fig29": "to random re-initialization",
                  "fig31": "to random pruning"}
ENDS = {"fig29": ("proj", "random_reinit"), "fig31": ("proj", "random_prune")}
lines = {("fig28", lv): land.figure_lines("fig12", lv) for lv in levels}
for fig_name, (a, b) in ENDS.items():
    for lv in levels:
        if (b, lv) in baseline_results.available():
            lines[fig_name, lv] = [land.line(PointRef(a, lv), PointRef(b, lv))]
for fig_name, what in APPENDIX_LINES.items():
    plots.save_each(ctx.store, lambda lv, f=fig_name, w=what: plots.line_figure(
        lines[f, lv], title=f"{f.replace('fig', 'Fig ')}, level {lv}: {w}"),
        [lv for lv in levels if (fig_name, lv) in lines], fig_name + "_barrier_level{:02d}.png")


def render_lines(level: int):
    drawn = [ln for (f, lv), group in lines.items() if lv == level for ln in group]
    return plots.line_figure(drawn, title=f"Figs 28, 29, 31, level {level}")


lk.level_picker(render_lines, levels, interactive)
barriers = ls.barrier_table((f, lv, ln) for (f, lv), group in lines.items() for ln in group)
ctx.store.save_table(barriers, "appendix_barriers.csv")
barriers.style.format(precision=4)

# %% [markdown]
# ## Figs 30, 32 and Tables VIII, IX: $W_{min(L)}$ against $W_{RI}(L)$ and $W_{RP}(L)$ (Figs 10, 18)
# The paper prints $V'(100)$ 389.957 for $W_{min(L)}$ against 442.242 for $W_{RI}$ (Table VIII)
# and 451.384 for $W_{RP}$ (Table IX); the level of those rows was lost in the extraction.

# %%
def render_choice(figure: int, name: str, level: int):
    spectra = H.eigenvalues(hs.imp_solution(imp_results, level), choice_points[level][name])
    return plots.eigenvalue_comparison(spectra, k, title=f"Fig {figure}, level {level}: "
                                       f"W_min(L) against {name}")


tables = {}
for figure, table, name in [(30, "table8", "W_RI(L)"), (32, "table9", "W_RP(L)")]:
    drawn = [lv for lv in levels if name in choice_points[lv]]
    if not drawn:
        print(f"Fig {figure}: no {name} in this run (run notebooks/02_baselines.ipynb)")
        continue
    plots.save_each(ctx.store, lambda lv: render_choice(figure, name, lv), drawn,
                    f"fig{figure}_eigenvalues_level{{:02d}}.png")
    lk.level_picker(lambda lv, f=figure, n=name: render_choice(f, n, lv), drawn, interactive)
    tables[table] = hs.choices_tables(H, {lv: {"W_min(L)": hs.imp_solution(imp_results, lv),
                                               name: choice_points[lv][name]} for lv in drawn})[0]
    ctx.store.save_table(tables[table], f"{table}.csv")
for table in tables.values():
    display(table.style.format(precision=3))
