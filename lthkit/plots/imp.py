"""Figures of training and IMP levels (Fig 1, training curves)."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FormatStrFormatter

__all__ = ["STRATEGY_STYLE", "fig01_levels", "fig02_strategies", "strategy_curves", "training_curves",
           "percent_axis", "plain_log_ticks"]


def plain_log_ticks(ax: plt.Axes) -> None:
    """On a log y axis spanning less than a decade or so, label ticks 1.25 rather than
    1.25×10⁰ (matplotlib's default there labels the minor ticks in scientific notation)."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log" and lo > 0 and hi / lo < 30:
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))


def percent_axis(ax: plt.Axes, values, label: str, min_span: float = 10.0) -> tuple[float, float]:
    """An accuracy axis in percent, inside 0-100 and at least `min_span` points tall.

    Autoscaling would stretch 99.3-100% over the whole axis, so that a difference of one image
    looks large (and add a margin past 100%). The label states the range whenever it is not
    0-100. Returns the limits.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = (0.0, 100.0) if v.size == 0 else (float(v.min()), float(v.max()))
    pad = max(min_span - (hi - lo), 0.0) / 2 + 0.05 * (hi - lo)
    lo, hi = math.floor(lo - pad), math.ceil(hi + pad)
    if hi > 100:
        lo, hi = lo - (hi - 100), 100
    if lo < 0:
        lo, hi = 0, min(100, hi - lo)
    ax.set_ylim(lo, hi)
    ax.set_ylabel(label if (lo, hi) == (0, 100) else f"{label}; axis {lo}-{hi}%")
    return lo, hi


def _weights_left_axis(ax: plt.Axes, levels: Sequence[int], left_pct: Sequence[float]) -> None:
    """A top axis labelling each level with its % of weights left."""
    top = ax.secondary_xaxis("top")
    top.set_xticks(list(levels))
    top.set_xticklabels([f"{p:.3g}" for p in left_pct], fontsize=7)
    top.set_xlabel("% of weights left", fontsize=8)


def fig01_levels(summary: pd.DataFrame, title: str = "IMP-WR") -> plt.Figure:
    """Fig 1: final training loss and test accuracy of W_min(L) against level."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    levels = summary.index.to_numpy()
    left = summary["weights_left_%"].to_numpy()
    ax_loss.plot(levels, summary["train_loss"], "o-", color="C0")
    ax_loss.set(xlabel="level L", ylabel="training loss", yscale="log",
                title=f"{title}: training loss of $W_{{min(L)}}$")
    ax_acc.plot(levels, 100 * summary["test_acc"], "o-", color="C1")
    ax_acc.set(xlabel="level L", title=f"{title}: test accuracy of $W_{{min(L)}}$")
    percent_axis(ax_acc, 100 * summary["test_acc"], "test accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(levels)
        _weights_left_axis(ax, levels, left)
    plain_log_ticks(ax_loss)
    return fig


def training_curves(history: Sequence[dict], title: str) -> plt.Figure:
    """Training loss and test accuracy per epoch of one training run."""
    h = pd.DataFrame(history)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    if h.empty:  # a run imported without its log
        ax_loss.text(0.5, 0.5, "no training log", ha="center", transform=ax_loss.transAxes)
        return fig
    imported = "source" in h  # an imported run's own log (open_lth's: test loss and accuracy)
    loss = "train_loss" if "train_loss" in h else "test_loss"
    ax_loss.plot(h["epoch"], h[loss], color="C0" if loss == "train_loss" else "C1",
                 label="training (running, augmented)" if loss == "train_loss" and not imported
                 else loss.replace("_", " "))
    ax_loss.set(xlabel="epoch", ylabel=loss.replace("_", " "), yscale="log", title=title)
    if imported:
        ax_loss.legend(fontsize=8, title=str(h["source"].iloc[0]))
    shown = [100 * h["train_acc"]] if "train_acc" in h else []
    if "test_acc" in h:
        tested = h.dropna(subset=["test_acc"])
        ax_acc.plot(tested["epoch"], 100 * tested["test_acc"], color="C1", label="test")
        shown.append(100 * tested["test_acc"])
    if "train_acc" in h:
        ax_acc.plot(h["epoch"], 100 * h["train_acc"], color="C0", alpha=0.6, label="training")
    ax_acc.set(xlabel="epoch", title=title)
    percent_axis(ax_acc, pd.concat(shown), "accuracy (%)")
    plain_log_ticks(ax_loss)
    ax_acc.legend(fontsize=8)
    return fig


STRATEGY_STYLE = {  # colour and marker of each strategy, shared by every comparison figure
    "imp": ("C0", "o"), "one_shot": ("C1", "s"), "fine_tune": ("C2", "^"),
    "lr_rewind": ("C3", "v"), "random_reinit": ("C4", "D"), "random_prune": ("C5", "P"),
    "random_prune_oneshot": ("C6", "X"),
}


def fig02_strategies(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Fig 2: final training loss and test accuracy of IMP-WR and every baseline against level.

    `summary` has columns strategy, symbol, level, train_loss, test_acc (BaselineResults.summary).
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for strategy, rows in summary.groupby("strategy", sort=False):
        rows = rows.sort_values("level")
        colour, marker = STRATEGY_STYLE.get(strategy, ("k", "."))
        style = dict(color=colour, marker=marker, label=f"${_tex(rows['symbol'].iloc[0])}$",
                     lw=2.2 if strategy == "imp" else 1.2, ms=6)
        ax_loss.plot(rows["level"], rows["train_loss"], **style)
        ax_acc.plot(rows["level"], 100 * rows["test_acc"], **style)
    ax_loss.set(xlabel="level L", ylabel="training loss", yscale="log",
                title=f"{title} training loss".strip())
    ax_acc.set(xlabel="level L", title=f"{title} test accuracy".strip())
    percent_axis(ax_acc, 100 * summary["test_acc"], "test accuracy (%)")
    levels = sorted(summary["level"].unique())
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(levels)
    plain_log_ticks(ax_loss)
    ax_acc.legend(fontsize=8, loc="best")
    return fig


def _tex(symbol: str) -> str:
    """W_min -> W_{min}, W_RP' -> W_{RP'}: a strategy symbol for mathtext."""
    head, _, sub = symbol.partition("_")
    return f"{head}_{{{sub}}}" if sub else head


def strategy_curves(histories: dict[str, list[dict]], symbols: dict[str, str],
                    title: str) -> plt.Figure:
    """Test accuracy and running training loss per epoch of several strategies at one level."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    shown = []
    for strategy, history in histories.items():
        h = pd.DataFrame(history)
        colour, _ = STRATEGY_STYLE.get(strategy, ("k", "."))
        label = f"${_tex(symbols[strategy])}$"
        ax_loss.plot(h["epoch"], h["train_loss"], color=colour, label=label)
        tested = h.dropna(subset=["test_acc"]) if "test_acc" in h else h.iloc[:0]
        ax_acc.plot(tested["epoch"], 100 * tested["test_acc"], color=colour, label=label)
        shown.extend(100 * tested["test_acc"])
    ax_loss.set(xlabel="epoch", ylabel="training loss (running)", yscale="log", title=title)
    ax_acc.set(xlabel="epoch", title=title)
    percent_axis(ax_acc, shown, "test accuracy (%)")
    plain_log_ticks(ax_loss)
    ax_acc.legend(fontsize=8)
    return fig
