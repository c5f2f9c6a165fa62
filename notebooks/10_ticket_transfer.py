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
# # 10 · MNIST tickets, ticket transfer and early-bird tickets
#
# Reproduces the IE643 course report (`papers/ie643_lth_report.txt`), after Frankle & Carbin
# (2019), Morcos et al. (2019) and You et al. (2020):
#
# * **Report Figs 1, 2 (Table 1):** iterative magnitude pruning with rewinding to initialization
#   for the MLP 300-100-10 and LeNet-5 on MNIST (Adam, lr 1.2e-3, batch 60), with the random
#   re-initialization control: test accuracy against % of weights left and against iterations.
#   *Look for:* the ticket holds its accuracy far longer than the re-initialized network.
# * **Report Figs 3-5 (Table 2):** transfer. A ticket found on one half of the training data,
#   retrained on the other half; a ticket found on digits 0-4, retrained on digits 5-9; tickets
#   found with SGD and with Adam, each retrained with the other. Every transferred ticket is set
#   against the ticket found on the target configuration itself. *Look for:* halves and
#   optimizers transfer; a ticket from other labels does much worse at high sparsity.
# * **Early-bird tickets** (the report's future work): the distance between the masks that
#   magnitude pruning would draw at successive epochs of one dense run, and the epoch from which
#   it stays under a threshold: the ticket is decided long before training ends.
#
# Parameters: the `mnist` section (its own data, models, optimizers and IMP recipes).

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

P = lk.notebook_params(params_file, globals())
interactive = lk.interactive_default(interactive, globals())
ctx = lk.open_run(P, create=True)
print(f"run folder: {ctx.store.root / 'mnist'}; data: {P.mnist.data.dataset}")

# %% [markdown]
# ## Tickets of the MLP and LeNet-5, and the random re-initialization control

# %%
runs = {arch: tickets.mnist_tickets(ctx, arch) for arch in ("mlp", "lenet5")}
tables = {arch: tickets.tickets_table(sub) for arch, sub in runs.items()}
for arch, table in tables.items():
    ctx.store.save_table(table, f"ie643_tickets_{arch}.csv")
ctx.store.save_figure(plots.tickets_accuracy(tables), "ie643_fig1_2_accuracy_vs_weights_left.png")
tables["mlp"].round(4)

# %% [markdown]
# Test accuracy against training iterations, for the dense network and some tickets (the level
# picker chooses the network).

# %%
def render_iterations(arch: str):
    imp_results = lk.ImpResults(runs[arch].store)
    levels = imp_results.levels_done()
    shown = sorted({levels[0], levels[len(levels) // 2], levels[-1]})
    histories = {f"{tables[arch].loc[lv, 'weights_left_%']:.1f}% left":
                 imp_results.metrics(lv)["history"] for lv in shown}
    return plots.accuracy_vs_iterations(histories, title=f"{arch}: tickets during training")


for arch in runs:
    ctx.store.save_figure(render_iterations(arch), f"ie643_accuracy_vs_iterations_{arch}.png")
lk.choice_picker(render_iterations, list(runs), interactive, description="network")

# %% [markdown]
# ## Transfer: halves of the data, other labels, other optimizers

# %%
transfers = [tickets.run_transfer(ctx, task) for task in tickets.transfer_tasks(P.run.seed)]
transfer_tables = {r.task.name: tickets.transfer_table(r) for r in transfers}
for name, table in transfer_tables.items():
    ctx.store.save_table(table, f"ie643_transfer_{name}.csv")
    ctx.store.save_figure(plots.transfer_accuracy(table, title=name), f"ie643_transfer_{name}.png")
lk.choice_picker(lambda name: plots.transfer_accuracy(transfer_tables[name], title=name),
                 list(transfer_tables), interactive, description="task")

# %%
import pandas as pd

pd.concat(transfer_tables.values()).set_index(["task", "level"]).round(4)

# %% [markdown]
# ## Early-bird tickets in the dense MLP run

# %%
eb = P.mnist.early_bird
distances, eb_epoch = tickets.early_bird(lk.ImpResults(runs["mlp"].store).level(0),
                                         fraction=eb.prune_fraction, threshold=eb.threshold)
ctx.store.save_table(distances, "early_bird_mlp.csv")
ctx.store.save_figure(plots.early_bird_distance(distances, eb.threshold, eb_epoch, title="(MLP)"),
                      "early_bird_mlp.png")
print(f"early-bird epoch (distance < {eb.threshold} from then on): {eb_epoch}")
