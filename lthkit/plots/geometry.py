"""Figures of distances, trajectories and similarity matrices (Figs 3, 4, 14, 15)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from lthkit.plots.imp import plain_log_ticks

__all__ = ["fig03_distances", "fig04_trajectory", "matrix_heatmap", "fig14_15_matrices"]


def fig03_distances(distances: pd.DataFrame, title: str = "") -> plt.Figure:
    """Fig 3: distance of the projected rewind point to Pr_L(min(L-1)) and to W_min(L)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    levels = distances.index.to_numpy()
    ax.plot(levels, distances["to_projected_previous"], "o-",
            label=r"$\|Pr_L(rewind) - Pr_L(min(L-1))\|$")
    ax.plot(levels, distances["to_solution"], "s-", label=r"$\|Pr_L(rewind) - W_{min(L)}\|$")
    ax.set(xlabel="level L", ylabel="Euclidean distance", xticks=levels,
           title=f"{title} distances from the projected rewind point".strip())
    ax.legend(fontsize=9)
    return fig


def fig04_trajectory(result: dict[str, torch.Tensor], level: int, figure: str = "Fig 4"
                     ) -> plt.Figure:
    """Fig 4: log training loss per epoch of level L's run and of level L-1's run on m_L
    (`figure` names it: Fig 25 in the VGG-16 appendix)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    ax.plot(result["epochs"].numpy(), result["loss"].numpy(), "o-", ms=3,
            label=f"level {level} (SGD on $m_{{{level}}}$)")
    ax.plot(result["projected_epochs"].numpy(), result["projected_loss"].numpy(), "s-", ms=3,
            label=f"level {level - 1} projected on $m_{{{level}}}$")
    ax.set(xlabel="epoch", ylabel="training loss (analysis subset)", yscale="log",
           title=f"{figure}: trajectories at level {level}")
    plain_log_ticks(ax)
    ax.legend(fontsize=9)
    return fig


def matrix_heatmap(matrix: pd.DataFrame, title: str, cmap: str = "viridis", fmt: str = "{:.3g}",
                   ax: plt.Axes | None = None) -> plt.Figure:
    """A labelled heatmap of a square matrix (Fig 14 distances, Fig 15 cosine similarities)."""
    n = len(matrix)
    if ax is None:
        size = max(5.0, 0.55 * n + 2)
        _, ax = plt.subplots(figsize=(size, size * 0.85), layout="constrained")
    values = matrix.to_numpy()
    image = ax.imshow(values, cmap=cmap)
    labels = [f"${_math(label)}$" for label in matrix.index]
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n), labels, fontsize=8)
    ax.grid(False)
    if n <= 16:
        middle = (np.nanmax(values) + np.nanmin(values)) / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=6.5,
                        color="white" if values[i, j] < middle else "black")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return ax.figure


def fig14_15_matrices(distances: pd.DataFrame, cosines: pd.DataFrame, title: str = "") -> plt.Figure:
    """Figs 14 and 15 side by side: Euclidean distances and cosine similarities."""
    n = len(distances)
    size = max(5.0, 0.55 * n + 2)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * size, size * 0.85), layout="constrained")
    matrix_heatmap(distances, f"Fig 14: Euclidean distance {title}".strip(), ax=left)
    matrix_heatmap(cosines, f"Fig 15: cosine similarity {title}".strip(), cmap="magma",
                   fmt="{:.3f}", ax=right)
    return fig


def _math(label: str) -> str:
    """'W_min(3)' -> 'W_{min(3)}' for mathtext."""
    head, _, rest = label.partition("_")
    return f"{head}_{{{rest}}}" if rest else head
