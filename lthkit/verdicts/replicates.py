"""Replicates: independent repeats of one run, each with a seed of its own, and their tables side
by side with the mean and the 95% t-interval across them.

    outputs/<run>/                 replicate 0: the run folder, laid out as it always was
    outputs/<run>/replicate_1/     replicate 1: its own manifest, checkpoints, caches, tables
    outputs/<run>/replicate_2/     ...

Replicate r >= 1 runs with `run.seed` replaced by `derive_seed(run.seed, "replicate", r)`, so
its data order and augmentation, initialization, rewind point, baselines, analysis subsets and
random directions are its own. The dataset itself (the synthetic draw, the seeded train and test
subsets) stays the run's (`Context.data_seed`): replicates repeat the experiment on the same data.
With `run.replicates: 1` nothing changes: one folder, today's layout.

A replicate's seed and parameters come from `lthkit.config.seeds`, its folder from
`lthkit.store.replicate_dir`. Notebooks of replicate 0 read the tables the other replicates wrote
under the same names (`tables_across`), and show them beside their own with the mean and the
t-interval (`across`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from lthkit.store.layout import other_replicates
from lthkit.verdicts.stats import CONFIDENCE, t_interval

__all__ = ["tables_across", "summary_frame", "across", "show", "read_table", "INTERVAL"]

INTERVAL = f"{CONFIDENCE:.0%} t-interval"


def read_table(path: Path) -> pd.DataFrame:
    """A table a notebook saved with `RunStore.save_table` (CSV, first column the index); an
    empty table (a notebook that had nothing to tabulate) reads as an empty frame."""
    try:
        return pd.read_csv(path, index_col=0)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def tables_across(ctx: Any, name: str) -> list[pd.DataFrame]:
    """The table `name` (under tables/) of this replicate first, then of every other replicate
    that has written it (finished that step), in replicate order. [] when this one has none."""
    own = ctx.store.table_path(name)
    if not own.exists():
        return []
    frames = [read_table(own)]
    for store in other_replicates(ctx).values():
        path = store.table_path(name)
        if path.exists():
            frames.append(read_table(path))
    return frames


def summary_frame(frames: Sequence[pd.DataFrame], columns: Sequence[str] | None = None,
                  key: Sequence[str] | None = None,
                  confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per row and numeric column: each replicate's value, their mean and t-interval.

    `key` columns (if given) identify a row across replicates, else the index does; rows of the
    first frame are kept, a row another replicate lacks counts as missing there. Columns come out
    as (column, "replicate r" | "mean" | "t-interval low" | "t-interval high").
    """
    keyed = [f.set_index(list(key)) if key else f for f in frames]
    if not keyed[0].index.is_unique:  # rows not identified by the index: align by position
        keyed = [f.reset_index(drop=True) for f in keyed]
    first = keyed[0]
    wanted = list(columns) if columns is not None else [
        c for c in first.columns if pd.api.types.is_numeric_dtype(first[c])
        and not pd.api.types.is_bool_dtype(first[c])]
    aligned = [f.reindex(first.index) for f in keyed]
    out: dict[tuple[str, str], list[float]] = {}
    for col in wanted:
        per = [f[col].astype(float) if col in f else pd.Series(float("nan"), index=first.index)
               for f in aligned]
        for r, series in enumerate(per):
            out[(col, f"replicate {r}")] = list(series)
        cells = [t_interval([s.iloc[i] for s in per], confidence) for i in range(len(first))]
        out[(col, "mean")] = [c.mean for c in cells]
        out[(col, "t-interval low")] = [c.low for c in cells]
        out[(col, "t-interval high")] = [c.high for c in cells]
    frame = pd.DataFrame(out, index=first.index)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def across(ctx: Any, name: str, columns: Sequence[str] | None = None,
           key: Sequence[str] | None = None) -> pd.DataFrame | None:
    """The table `name` of every finished replicate side by side with mean and t-interval,
    saved as tables/<name>_replicates.csv; None (and nothing printed) with one replicate."""
    frames = tables_across(ctx, name)
    if len(frames) < 2:
        return None
    frame = summary_frame(frames, columns, key)
    ctx.store.save_table(frame, name.replace(".csv", "_replicates.csv"))
    print(f"{name} across {len(frames)} replicates (replicate 0 is this run folder, replicate "
          f"r >= 1 its replicate_<r>/): each replicate's value, the mean, and the {INTERVAL} of "
          f"the mean (Student's t, n - 1 degrees of freedom)")
    return frame


def show(ctx: Any, name: str, columns: Sequence[str] | None = None,
         key: Sequence[str] | None = None) -> pd.DataFrame | None:
    """`across`, displayed in the notebook (a cell may show several tables); nothing with one
    replicate. Returns the frame."""
    frame = across(ctx, name, columns, key)
    if frame is not None:
        from IPython.display import display

        display(frame.style.format(precision=4))
    return frame
