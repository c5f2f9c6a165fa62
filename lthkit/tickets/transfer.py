"""Ticket transfer (Morcos et al. 2019; the IE643 report's tasks 1-3): a ticket found on one
configuration (a half of the data, a label set, an optimizer) retrained on another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import pandas as pd

from lthkit.config.series import TICKET_TRANSFER, notebook_file
from lthkit.config.training import ImpSection, ModelSection, TrainSection
from lthkit.data.images import ImageData
from lthkit.train.context import Context, sub_run
from lthkit.train.imp import ImpResults, SolutionFiles, run_imp, train_solution

MADE_BY_10 = notebook_file(TICKET_TRANSFER)


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
                   train=_train_for(t.train, t.sgd_lr, t.sgd_momentum, config.optimizer), imp=imp)


def _train_for(adam: TrainSection, sgd_lr: float, sgd_momentum: float,
               optimizer: str) -> TrainSection:
    """The Adam recipe, or the same with SGD at `sgd_lr` and `sgd_momentum` (task 3)."""
    if optimizer == "adam":
        return adam
    return adam.model_copy(update={"optimizer": "sgd", "lr": sgd_lr, "momentum": sgd_momentum})


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
    """Per level: the target's own ticket against the transferred source ticket (test accuracy),
    their difference (transferred minus own: the report's "generalizes well" per level), the
    source's own ticket on its own data and optimizer (task 3 compares the two optimizers' own
    tickets) and chance accuracy on the target (1 / its classes: task 2's collapse)."""
    own, source = ImpResults(result.target.store), ImpResults(result.source.store)
    chance = 1.0 / int(result.target.data.test_y.unique().numel())
    rows = []
    for level in own.levels_done():
        f = own.metrics(level)["final"]
        row = {"task": result.task.name, "level": level, "weights_left_%": 100 * f["density"],
               "target_ticket_test_acc": f["test_acc"], "chance_test_acc": chance}
        if level in source.levels_done():  # the source's ticket on its own data and optimizer
            row["source_ticket_test_acc"] = source.metrics(level)["final"]["test_acc"]
        files = result.transferred(level)
        if files.done():
            row["transferred_ticket_test_acc"] = files.metrics()["final"]["test_acc"]
            row["transferred_minus_target"] = row["transferred_ticket_test_acc"] - f["test_acc"]
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every task's table in one, indexed by (task, level)."""
    return pd.concat(list(tables.values())).set_index(["task", "level"])


