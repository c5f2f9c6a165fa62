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
# # 02 · The comparison solutions
#
# Reproduces **Fig 2** (and **Fig 24** for VGG-16): training loss and test accuracy of the IMP
# solution $W_{min(L)}$ against the paper's other ways of reaching the same sparsity, level by level:
#
# | symbol | how it is made |
# | --- | --- |
# | $W_{OS(L)}$ one-shot | magnitude-prune $W_{min(0)}$ in one step to the sparsity of $m_L$, rewind, retrain |
# | $W_{FT(L)}$ fine-tuning | keep training $m_L \odot W_{min(L-1)}$ at a small fixed learning rate |
# | $W_{LRR(L)}$ learning-rate rewinding | retrain $m_L \odot W_{min(L-1)}$ with the rewound schedule |
# | $W_{RI(L)}$ random re-initialization | mask $m_L$, survivors drawn afresh, retrain from scratch |
# | $W_{RP(L)}$ random pruning | prune IMP's count at random from $m_{L-1}$, rewind, retrain |
# | $W_{RP'(L)}$ one-shot random pruning | random mask of $m_L$'s sparsity over the dense net, rewind, retrain |
#
# Each is trained once, stored beside the IMP levels in the run folder, and reused by notebooks
# 03-08. **What to look for:** $W_{min(L)}$ keeps the lowest training loss and the best test
# accuracy as levels go up; random re-initialization and one-shot random pruning fall behind first;
# learning-rate rewinding stays close to weight rewinding, fine-tuning does not (Renda et al.).

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
from lthkit.train.baselines import SYMBOLS, run_baselines
from lthkit.train.training import precision_note
from lthkit.verdicts import paper_claims, replicates

P, ctx, interactive, imp_results, levels = lk.notebook_context(
    globals(), "02_baselines")
print(f"baselines {', '.join(P.baselines.kinds)} at levels {levels}; "
      f"{precision_note(P.train, ctx.device)}")

# %% [markdown]
# ## Train the baselines
# Finished ones are read from the run folder; an interrupted one resumes from its last epoch.

# %%
baseline_results = run_baselines(ctx)

# %% [markdown]
# ## Fig 2: every strategy against level
# Final training loss (log axis) and test accuracy of each strategy at the sparsity of each IMP
# level. As in Fig 1 the accuracy axis spans at least 10 points within 0-100%, its range in the
# label.

# %%
summary = baseline_results.summary(imp_results)
ctx.store.save_table(summary, "fig02_strategies.csv")
fig = plots.fig02_strategies(summary, title=P.model.arch)
ctx.store.save_figure(fig, "fig02_strategies.png")
summary.pivot_table(index="level", columns="symbol", values=["test_acc", "train_loss"]).round(4)

# %% [markdown]
# ## Across replicates
# With `run.replicates` > 1: each replicate's value of the table above, their mean and the 95%
# t-interval of the mean (nothing is shown for a run of one replicate).

# %%
replicates.show(ctx, "fig02_strategies.csv", columns=["train_loss", "test_acc"],
                key=["strategy", "level"]);

# %% [markdown]
# ## Training curves of every strategy, level by level

# %%
def render(level: int):
    histories = {"imp": imp_results.metrics(level)["history"]}
    histories |= {kind: baseline_results.metrics(kind, level)["history"]
                  for kind, lv in baseline_results.available() if lv == level}
    return plots.strategy_curves(histories, SYMBOLS, title=f"level {level}")


lk.level_picker(render, baseline_results.levels(), interactive)

# %% [markdown]
# ## Claims
# Fig 2's statement that IMP-WR's solution outperforms the other solutions, as two comparisons
# per level (test accuracy against the best other strategy's, training loss against the lowest
# other), judged across the replicates of the run (`run.replicates`; with one replicate every
# verdict is inconclusive). The rule is printed under the table; published numbers never enter a
# verdict. The report's `index.html` and `claims.csv` gather the claims of every notebook.

# %%
claims_table = paper_claims.notebook_claims(ctx, "02_baselines")
print(paper_claims.rule_text(ctx, "02_baselines"))
claims_table
