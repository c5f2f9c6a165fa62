"""Figures of the tickets beyond the main paper: MNIST tickets, transfer, early birds, Bain's gap."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["tickets_accuracy", "accuracy_vs_iterations", "transfer_accuracy", "early_bird_distance",
           "ticket_gap"]


def _weights_left_axis(ax: plt.Axes) -> None:
    """Percent of weights left on a log axis, decreasing to the right (as Frankle & Carbin)."""
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("% of weights left")


def tickets_accuracy(tables: Mapping[str, pd.DataFrame], control: str = "random re-init") -> plt.Figure:
    """Test accuracy of the ticket and of its control against % of weights left, one panel each."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 3.8), layout="constrained",
                             squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        ax.plot(table["weights_left_%"], 100 * table["ticket_test_acc"], "o-", label="winning ticket")
        if "control_test_acc" in table:
            ax.plot(table["weights_left_%"], 100 * table["control_test_acc"], "s--", label=control)
        _weights_left_axis(ax)
        ax.set(ylabel="test accuracy (%)", title=name)
        ax.legend(fontsize=8)
    return fig


def accuracy_vs_iterations(histories: Mapping[str, list[dict]], title: str) -> plt.Figure:
    """Test accuracy against training iterations, one line per labelled run."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    for label, history in histories.items():
        h = pd.DataFrame(history).dropna(subset=["test_acc"])
        ax.plot(h["iteration"], 100 * h["test_acc"], label=label)
    ax.set(xlabel="training iteration", ylabel="test accuracy (%)", title=title)
    ax.legend(fontsize=8)
    return fig


def transfer_accuracy(table: pd.DataFrame, title: str) -> plt.Figure:
    """A transferred ticket against the target's own ticket, per % of weights left."""
    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    ax.plot(table["weights_left_%"], 100 * table["target_ticket_test_acc"], "o-",
            label="ticket found on the target")
    if "transferred_ticket_test_acc" in table:
        ax.plot(table["weights_left_%"], 100 * table["transferred_ticket_test_acc"], "s--",
                label="ticket transferred from the source")
    _weights_left_axis(ax)
    ax.set(ylabel="test accuracy on the target (%)", title=title)
    ax.legend(fontsize=8)
    return fig


def early_bird_distance(table: pd.DataFrame, threshold: float, eb_epoch: float | None,
                        title: str = "") -> plt.Figure:
    """Mask distance between successive epochs, the threshold, and the early-bird epoch."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    ax.plot(table["epoch"], table["distance"], "o-", label="distance to the previous epoch's mask")
    ax.axhline(threshold, color="grey", ls=":", label=f"threshold {threshold:g}")
    if eb_epoch is not None:
        ax.axvline(eb_epoch, color="C3", ls="--", label=f"early-bird epoch {eb_epoch:g}")
    ax.set(xlabel="epoch", ylabel="normalized Hamming distance",
           title=f"Early-bird tickets {title}".strip())
    ax.legend(fontsize=8)
    return fig


def ticket_gap(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bain's Fig 5 in numbers: test accuracy of IMP and random tickets, and the gap."""
    fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    ax.plot(table["weights_left_%"], 100 * table["ticket_test_acc"], "o-", label="IMP ticket")
    if "random_test_acc" in table:
        ax.plot(table["weights_left_%"], 100 * table["random_test_acc"], "s--", label="random ticket")
        ax_gap.plot(table["weights_left_%"], 100 * table["gap"], "o-", color="C3")
    for a in (ax, ax_gap):
        _weights_left_axis(a)
    ax.set(ylabel="test accuracy (%)", title=f"{title} IMP against random tickets".strip())
    ax_gap.set(ylabel="gap in test accuracy (points)", title="IMP minus random")
    ax.legend(fontsize=8)
    return fig
