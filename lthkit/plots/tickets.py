"""Figures of the tickets beyond the main paper: MNIST tickets, transfer, early birds, Bain's gap."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["tickets_accuracy", "accuracy_vs_iterations", "transfer_accuracy", "early_bird_distance",
           "mask_distance_matrix", "ticket_gap", "ticket_surfaces", "ticket_surface",
           "ticket_surface_sweep"]


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
        _percent_axis(ax)
        ax.legend(fontsize=8)
    return fig


def accuracy_vs_iterations(histories: Mapping[str, list[dict]], title: str,
                           kept: Mapping[str, float] | None = None) -> plt.Figure:
    """Test accuracy against training iterations, one line per labelled run; `kept` marks the
    iteration early stopping kept for a run (by its label)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    for i, (label, history) in enumerate(histories.items()):
        h = pd.DataFrame(history).dropna(subset=["test_acc"])
        ax.plot(h["iteration"], 100 * h["test_acc"], color=f"C{i}", label=label)
        if kept and label in kept:
            at = h.loc[h["iteration"] == kept[label], "test_acc"]
            if len(at):
                ax.plot(kept[label], 100 * at.iloc[0], "*", color=f"C{i}", mec="black", ms=11,
                        label="kept (lowest validation loss)" if i == 0 else None)
    ax.set(xlabel="training iteration", ylabel="test accuracy (%)", title=title)
    _percent_axis(ax)
    ax.legend(fontsize=8)
    return fig


def _percent_axis(ax: plt.Axes) -> None:
    """An accuracy axis in percent that stays within 0-100 (no 105% headroom)."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(lo, 0.0), min(hi, 100.0))


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
    _percent_axis(ax)
    ax.legend(fontsize=8)
    return fig


def early_bird_distance(tables: Mapping[str, pd.DataFrame], epsilon: float, window: int,
                        title: str = "") -> plt.Figure:
    """Mask distance between consecutive epochs, one line per run and kind of mask; epsilon; and
    the epoch at which You et al.'s rule draws each ticket (the largest of the last `window`
    distances under epsilon), as a dashed line in the run's colour."""
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for i, (name, table) in enumerate(tables.items()):
        if not len(table):
            continue
        ax.plot(table["epoch"], table["distance"], "o-", ms=3, color=f"C{i}", label=name)
        drawn = table.loc[table["drawn"], "epoch"]
        if len(drawn):
            ax.axvline(drawn.iloc[0], color=f"C{i}", ls="--", lw=1,
                       label=f"drawn at epoch {drawn.iloc[0]:g}")
    ax.axhline(epsilon, color="grey", ls=":", label=f"epsilon {epsilon:g}")
    ax.set(xlabel="epoch", ylabel="normalized Hamming distance\nto the previous epoch's mask",
           title=(f"Early-bird tickets {title}".strip() +
                  f"\n(drawn when the last {window} distances are all below epsilon)"))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    return fig


def mask_distance_matrix(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Distance between the channel masks of every pair of epochs (You et al.'s mask-distance
    matrix): a dark block that grows from the diagonal is a mask that has stopped moving."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    epochs = matrix.index.to_numpy(dtype=float)
    image = ax.imshow(matrix.to_numpy(), cmap="viridis", origin="lower", vmin=0,
                      extent=(epochs[0] - 0.5, epochs[-1] + 0.5, epochs[0] - 0.5, epochs[-1] + 0.5))
    fig.colorbar(image, ax=ax, label="normalized Hamming distance")
    ax.set(xlabel="epoch", ylabel="epoch", title=title or "channel-mask distance between epochs")
    ax.grid(False)
    return fig


def _relabel_split(fig: plt.Figure, split: str) -> plt.Figure:
    """Name the loss of a surface figure after its split (the landscape plots say "training")."""
    if split == "test":
        for ax in fig.axes:
            for get, put in ((ax.get_xlabel, ax.set_xlabel), (ax.get_ylabel, ax.set_ylabel)):
                put(get().replace("training loss", "test loss"))
            if hasattr(ax, "get_zlabel"):
                ax.set_zlabel(ax.get_zlabel().replace("training loss", "test loss"))
    return fig


def ticket_surfaces(pair: Mapping[str, tuple[Mapping, str]], suptitle: str = "") -> plt.Figure:
    """Bain's Figs 6 and 7 for one sparsity: the IMP and the random ticket's surfaces side by
    side on one colour scale, the loss named after the examples' split."""
    from lthkit.plots.landscape import surfaces_side_by_side

    surfaces = [s for s, _ in pair.values()]
    fig = surfaces_side_by_side(surfaces, [t for _, t in pair.values()], suptitle=suptitle,
                                paper="bain")
    return _relabel_split(fig, surfaces[0].get("split", "train"))


def ticket_surface(surface: Mapping, title: str = "") -> plt.Figure:
    """One filter-normalized surface (contours and 3D), the loss named after its split."""
    from lthkit.plots.landscape import surface_figure

    return _relabel_split(surface_figure(surface, title=title, paper="bain"),
                          surface.get("split", "train"))


def ticket_surface_sweep(surfaces: Sequence[Mapping], title: str = "") -> plt.Figure:
    """One surface on more and more examples (Bain's Fig 2), the loss named after its split."""
    from lthkit.plots.landscape import surface_sweep

    return _relabel_split(surface_sweep(surfaces, title=title, paper="bain"),
                          surfaces[0].get("split", "train"))


def ticket_gap(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bain's Section 7 in numbers: test accuracy of IMP and random tickets, and the gap."""
    fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    ax.plot(table["weights_left_%"], 100 * table["ticket_test_acc"], "o-", label="IMP ticket")
    if "random_test_acc" in table:
        ax.plot(table["weights_left_%"], 100 * table["random_test_acc"], "s--", label="random ticket")
        ax_gap.plot(table["weights_left_%"], 100 * table["gap"], "o-", color="C3")
    for a in (ax, ax_gap):
        _weights_left_axis(a)
    ax.set(ylabel="test accuracy (%)", title=f"{title} IMP against random tickets".strip())
    _percent_axis(ax)
    ax_gap.set(ylabel="gap in test accuracy (points)", title="IMP minus random")
    ax.legend(fontsize=8)
    return fig
