"""What the ticket experiments share: the per-level accuracy of a ticket against its control, and
the epoch early stopping kept for a solution (written beside it)."""

from __future__ import annotations

import pandas as pd

from lthkit.store.files import load_json
from lthkit.train.baselines import BaselineResults
from lthkit.train.context import Context
from lthkit.train.imp import ImpResults, SolutionFiles

__all__ = ["EARLY_STOPPING_FILE", "kept_epoch", "tickets_table"]

EARLY_STOPPING_FILE = "early_stopping.json"  # beside a solution kept by early stopping


def kept_epoch(files: SolutionFiles) -> int | None:
    """The epoch early stopping kept for a solution (None: it keeps its last epoch)."""
    path = files.folder / EARLY_STOPPING_FILE
    return int(load_json(path)["best_epoch"]) if path.exists() else None


def tickets_table(sub: Context, control: str = "random_reinit") -> pd.DataFrame:
    """Test accuracy of the IMP ticket and of the control at every level, with weights left.

    `ticket_vs_dense` is the ticket's test accuracy minus the dense network's (level 0): the
    "commensurate accuracy" of the hypothesis, read off per level. With early stopping, the
    epochs kept for each are given too.
    """
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    rows = []
    levels = imp.levels_done()
    dense = imp.metrics(0)["final"]["test_acc"] if levels else None
    for level in levels:
        f = imp.metrics(level)["final"]
        row = {"level": level, "weights_left_%": 100 * f["density"],
               "ticket_test_acc": f["test_acc"], "ticket_train_loss": f["train_loss"],
               "ticket_vs_dense": f["test_acc"] - dense}
        kept = kept_epoch(imp.level(level))
        if kept is not None:
            row["ticket_kept_epoch"] = kept
        if (control, level) in base.available():
            g = base.metrics(control, level)["final"]
            row |= {"control_test_acc": g["test_acc"], "control_train_loss": g["train_loss"]}
            kept = kept_epoch(base.files(control, level))
            if kept is not None:
                row["control_kept_epoch"] = kept
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")
