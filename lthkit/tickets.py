"""Lottery tickets beyond the main paper: MNIST tickets and their transfer, early-bird tickets
(the IE643 report, after Frankle & Carbin 2019, Morcos et al. 2019, You et al. 2020), and
winning against random tickets of LeNet-5 on CIFAR-10 (Bain).

Every experiment is an IMP run of its own (`context.sub_run`) inside the run folder:

    <run>/mnist/mlp, <run>/mnist/lenet5            tickets with rewinding to initialization
    <run>/mnist/transfer/<config>                   tickets of each transfer configuration
    <run>/mnist/transfer/<target>/from_<source>/    a source ticket retrained on the target
    <run>/bain                                      LeNet-5 tickets and random tickets

so each is resumable, and reused on the next run, like the main IMP run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch

from .baselines import BaselineResults, run_baselines
from .context import Context, sub_run
from .data import ImageData
from .imp import ImpResults, SolutionFiles, run_imp, train_solution
from .params import ImpSection, ModelSection, TrainSection
from .pruning import hamming_distance, magnitude_prune

__all__ = ["mnist_tickets", "TransferTask", "transfer_tasks", "run_transfer", "transfer_table",
           "early_bird", "bain_tickets", "accuracy_table", "tickets_table", "TransferResult",
           "RANDOM_TICKET", "bain_pairs", "ticket_histories", "ticket_surfaces"]

MADE_BY_10 = "notebooks/10_ticket_transfer.ipynb"
RANDOM_TICKET = "random_prune_oneshot"  # Bain's random ticket: a random mask of m_L's layer counts


# --- MNIST tickets (IE643 Table 1) --------------------------------------------------------------

def mnist_tickets(ctx: Context, arch: str, progress: bool = True) -> Context:
    """IMP (rewinding to initialization) and the random re-initialization control on MNIST."""
    p = ctx.params.mnist
    spec = getattr(p, arch)
    sub = sub_run(ctx, f"mnist/{arch}", data=p.data, model=spec.model, train=spec.train,
                  imp=spec.imp, baselines=ctx.params.baselines.model_copy(
                      update={"kinds": ["random_reinit"], "levels": "all"}))
    run_imp(sub, progress=progress)
    run_baselines(sub, progress=progress, together=False)
    return sub


def tickets_table(sub: Context, control: str = "random_reinit") -> pd.DataFrame:
    """Test accuracy of the IMP ticket and of the control at every level, with weights left."""
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    rows = []
    for level in imp.levels_done():
        f = imp.metrics(level)["final"]
        row = {"level": level, "weights_left_%": 100 * f["density"], "ticket_test_acc": f["test_acc"],
               "ticket_train_loss": f["train_loss"]}
        if (control, level) in base.available():
            g = base.metrics(control, level)["final"]
            row |= {"control_test_acc": g["test_acc"], "control_train_loss": g["train_loss"]}
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")


# --- transfer (Morcos et al. 2019, the report's tasks 1-3) ----------------------------------------

@dataclass(frozen=True)
class TransferConfig:
    """One training configuration: which part of the data, which optimizer."""

    name: str
    select: Callable[[ImageData], ImageData] | None
    optimizer: str


@dataclass(frozen=True)
class TransferTask:
    """A ticket found on `source` retrained on `target`, against `target`'s own ticket."""

    name: str
    source: TransferConfig
    target: TransferConfig
    imp_key: str  # which ImpSection of params.mnist.transfer the task uses


def transfer_tasks(seed: int) -> list[TransferTask]:
    """The report's three tasks: halves of the data, digits 0-4 -> 5-9, SGD <-> Adam."""
    half = [TransferConfig(f"half{h}", lambda d, h=h: d.train_half(h, seed), "adam") for h in (0, 1)]
    low = TransferConfig("digits0-4", lambda d: d.with_classes([0, 1, 2, 3, 4]), "adam")
    high = TransferConfig("digits5-9", lambda d: d.with_classes([5, 6, 7, 8, 9]), "adam")
    sgd, adam = TransferConfig("sgd", None, "sgd"), TransferConfig("adam", None, "adam")
    return [TransferTask("halves", half[0], half[1], "halves_imp"),
            TransferTask("labels", low, high, "labels_imp"),
            TransferTask("sgd_to_adam", sgd, adam, "optimizers_imp"),
            TransferTask("adam_to_sgd", adam, sgd, "optimizers_imp")]


def _config_run(ctx: Context, task: TransferTask, config: TransferConfig) -> Context:
    t = ctx.params.mnist.transfer
    imp: ImpSection = getattr(t, task.imp_key)
    return sub_run(ctx, f"mnist/transfer/{task.imp_key.removesuffix('_imp')}_{config.name}",
                   select=config.select, data=ctx.params.mnist.data, model=ModelSection(arch=t.arch),
                   train=_train_for(t.train, t.sgd_lr, config.optimizer), imp=imp)


def _train_for(adam: TrainSection, sgd_lr: float, optimizer: str) -> TrainSection:
    if optimizer == "adam":
        return adam
    return adam.model_copy(update={"optimizer": "sgd", "lr": sgd_lr, "momentum": 0.9})


@dataclass
class TransferResult:
    task: TransferTask
    source: Context
    target: Context

    def transferred(self, level: int) -> SolutionFiles:
        return SolutionFiles(self.target.store.root / f"from_{self.task.source.name}" /
                             f"level_{level:02d}", made_by=MADE_BY_10)


def run_transfer(ctx: Context, task: TransferTask, progress: bool = True) -> TransferResult:
    """Find tickets on source and target, then retrain each source ticket on the target.

    The retrained ticket starts from the source's mask m_L and the source's initialization (the
    rewind point of these runs is iteration 0) and trains with the target's data and optimizer.
    """
    source, target = _config_run(ctx, task, task.source), _config_run(ctx, task, task.target)
    for sub in (source, target):
        run_imp(sub, progress=progress)
    result = TransferResult(task, source, target)
    src = ImpResults(source.store)
    init = src.init()
    for level in src.levels_done():
        files = result.transferred(level)
        if not files.done():
            train_solution(target, files, tag=f"transfer/{task.name}/level_{level:02d}",
                           mask=src.mask(level), start=init, start_iteration=0, progress=progress)
    return result


def transfer_table(result: TransferResult) -> pd.DataFrame:
    """Per level: the target's own ticket against the transferred source ticket (test accuracy)."""
    own = ImpResults(result.target.store)
    rows = []
    for level in own.levels_done():
        f = own.metrics(level)["final"]
        row = {"task": result.task.name, "level": level, "weights_left_%": 100 * f["density"],
               "target_ticket_test_acc": f["test_acc"]}
        files = result.transferred(level)
        if files.done():
            row["transferred_ticket_test_acc"] = files.metrics()["final"]["test_acc"]
        rows.append(row)
    return pd.DataFrame(rows)


# --- early-bird tickets (You et al. 2020) ---------------------------------------------------------

def early_bird(files: SolutionFiles, fraction: float, threshold: float) -> tuple[pd.DataFrame, float | None]:
    """Mask distance between successive epochs of one run, and the early-bird epoch.

    At every kept epoch the mask is what magnitude pruning of `fraction` (global) would keep;
    the distance is the normalized Hamming distance to the previous epoch's mask. The early-bird
    epoch is the first from which the distance stays below `threshold` to the end (None: never).
    """
    names = list(files.mask())
    rows, previous = [], None
    for epoch, state in files.trajectory():
        weights = {n: state[n] for n in names}
        dense = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
        mask = magnitude_prune(weights, dense, fraction=fraction)
        if previous is not None:
            rows.append({"epoch": epoch, "distance": hamming_distance(previous, mask)})
        previous = mask
    table = pd.DataFrame(rows)
    eb = None
    for i in range(len(table)):
        if (table["distance"].iloc[i:] < threshold).all():
            eb = float(table["epoch"].iloc[i])
            break
    return table, eb


# --- Bain: winning against random tickets -------------------------------------------------------

def bain_tickets(ctx: Context, progress: bool = True) -> Context:
    """LeNet-5 IMP tickets (rewinding to initialization) and random tickets of the same sparsity.

    A random ticket of level L is a random mask with m_L's per-layer counts (scope layerwise) on
    the same initialization, i.e. the `random_prune_oneshot` baseline with k = 0.
    """
    b = ctx.params.bain
    sub = sub_run(ctx, "bain", data=b.data, model=b.model, train=b.train, imp=b.imp)
    run_imp(sub, progress=progress)
    levels = [lv for lv in sub.params.levels(b.random_levels) if lv >= 1]
    if levels:
        run_baselines(sub, kinds=["random_prune_oneshot"], levels=levels, progress=progress,
                      together=False)
    return sub


def accuracy_table(sub: Context) -> pd.DataFrame:
    """Test accuracy of IMP and random tickets per level, and their gap (Bain's Fig 5)."""
    table = tickets_table(sub, control="random_prune_oneshot")
    if "control_test_acc" in table:
        table["gap"] = table["ticket_test_acc"] - table["control_test_acc"]
    return table.rename(columns=lambda c: c.replace("control", "random"))


def bain_pairs(sub: Context, levels: list[int]) -> list[int]:
    """The levels of `levels` at which both an IMP ticket and a random ticket are trained."""
    have = {lv for kind, lv in BaselineResults(sub.store).available() if kind == RANDOM_TICKET}
    done = set(ImpResults(sub.store).levels_done())
    return [lv for lv in levels if lv in have and lv in done]


def ticket_histories(sub: Context, level: int) -> dict[str, list[dict]]:
    """Per-epoch training records of the IMP ticket and the random ticket of one level."""
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    left = 100 * imp.metrics(level)["final"]["density"]
    out = {f"IMP ticket ({left:.1f}% left)": imp.metrics(level)["history"]}
    if (RANDOM_TICKET, level) in base.available():
        out[f"random ticket ({left:.1f}% left)"] = base.metrics(RANDOM_TICKET, level)["history"]
    return out


def ticket_surfaces(land, level: int, examples: int | None = None) -> list[tuple[dict, str]]:
    """Filter-normalized surfaces of the IMP and the random ticket of a level, with titles that
    give each one's test accuracy (Bain's Figs 3 and 4). `land` is a `Landscape` of the sub-run.
    """
    from .landscape import PointRef

    imp, base = land.imp, land.baselines
    out = []
    refs = [PointRef("imp", level)]
    if (RANDOM_TICKET, level) in base.available():
        refs.append(PointRef(RANDOM_TICKET, level))
    for ref in refs:
        final = (imp.metrics(level) if ref.kind == "imp" else base.metrics(ref.kind, level))["final"]
        name = "IMP ticket" if ref.kind == "imp" else "random ticket"
        title = (f"{name}, {100 * final['density']:.1f}% left\n"
                 f"test acc {100 * final['test_acc']:.1f}%")
        out.append((land.surface(ref, examples=examples), title))
    return out
