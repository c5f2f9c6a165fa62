"""Figures of the loss landscape: lines (Figs 9, 12, 17, 19), basin radii (Figs 6, 8), the plane
through three solutions (Fig 13) and filter-normalized surfaces (Li et al. 2018; Bain).

Each takes the plain dicts that `lthkit.landscape` returns (and caches) and returns a Figure.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

__all__ = ["line_figure", "barrier_summary", "radius_histograms", "radius_summary",
           "plane_figure", "surface_figure", "surface_sweep", "surfaces_side_by_side", "save_each"]


def save_each(store: Any, render: Callable[[Any], plt.Figure], items: Iterable[Any],
              name: str) -> list[Any]:
    """Render every item, save it as `name.format(item)` under the run's figures/, close it.

    The notebooks save a figure per level this way, then show them with a level picker.
    """
    paths = []
    for item in items:
        fig = render(item)
        paths.append(store.save_figure(fig, name.format(item)))
        plt.close(fig)
    return paths


def _np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def line_figure(lines: Sequence[Mapping[str, Any]], title: str = "",
                labels: Sequence[str] | None = None, log: bool = True) -> plt.Figure:
    """Training loss (and accuracy) along (1-α) A + α B of each line; dotted lines at A and B.

    With `log`, the loss axis is logarithmic when the losses span more than a factor of 5.
    """
    with_acc = all("acc" in ln for ln in lines)
    fig, axes = plt.subplots(1, 2 if with_acc else 1, figsize=(10 if with_acc else 5.5, 3.6),
                             layout="constrained", squeeze=False)
    ax_loss = axes[0, 0]
    for i, ln in enumerate(lines):
        name = labels[i] if labels else f"{ln['a_math']} → {ln['b_math']}"
        a, loss = _np(ln["alpha"]), _np(ln["loss"])
        ax_loss.plot(a, loss, "-", color=f"C{i}", label=f"{name}  (barrier {ln['barrier']:.3g})")
        ends = np.isin(a, (0.0, 1.0))
        ax_loss.plot(a[ends], loss[ends], "o", color=f"C{i}")
        if with_acc:
            axes[0, 1].plot(a, 100 * _np(ln["acc"]), "-", color=f"C{i}", label=name)
    for ax in axes[0]:
        for x in (0, 1):
            ax.axvline(x, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("α   ((1-α) A + α B)")
    losses = np.concatenate([_np(ln["loss"]) for ln in lines])
    spread = np.nanmax(losses) / max(np.nanmin(losses), 1e-12)
    ax_loss.set(ylabel="training loss", yscale="log" if log and spread > 5 else "linear")
    ax_loss.legend(fontsize=7)
    if with_acc:
        axes[0, 1].set(ylabel="training accuracy (%)")
    if title:
        fig.suptitle(title)
    return fig


def barrier_summary(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Barrier height against level, one series per pair of points (columns figure, series)."""
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for i, ((figure, series), rows) in enumerate(table.groupby(["figure", "series"], sort=False)):
        ax.plot(rows["level"], rows["barrier"], "o-", color=f"C{i}", label=f"{figure}: {series}")
    ax.set(xlabel="level L", ylabel="barrier height (loss)", title=title or "barriers")
    ax.set_xticks(sorted(table["level"].unique()))
    ax.legend(fontsize=7)
    return fig


def radius_histograms(first: Mapping[str, Any], second: Mapping[str, Any], title: str = "",
                      bins: int | None = None) -> plt.Figure:
    """Histograms of the basin radii of two points on shared bins, their means marked (Figs 6, 8)."""
    ra, rb = _np(first["radii"]), _np(second["radii"])
    both = np.concatenate([ra, rb])
    edges = np.histogram_bin_edges(both, bins=bins or min(30, max(5, len(both) // 6)))
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    for i, (r, res) in enumerate(((ra, first), (rb, second))):
        ax.hist(r, bins=edges, alpha=0.55, color=f"C{i}",
                label=f"{res['math']}: mean {res['mean']:.4g}")
        ax.axvline(res["mean"], color=f"C{i}", lw=1.5, ls="--")
    space = first.get("space")
    ax.set(xlabel="radius of the basin along a random unit direction", ylabel="directions",
           title=title or (f"basin radius in level {space} space" if space is not None else ""))
    ax.legend(fontsize=8)
    return fig


def radius_summary(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Mean radius (± std) of each solution against level."""
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    flat = table.reset_index()
    flat["which"] = flat.groupby("level").cumcount()
    for which, rows in flat.groupby("which"):
        ax.errorbar(rows["level"], rows["mean_radius"], yerr=rows["std"], fmt="o-", capsize=3,
                    color=f"C{which}", label=" / ".join(dict.fromkeys(rows["solution"]))[:60])
    ax.set(xlabel="level L", ylabel="mean basin radius", title=title)
    ax.set_xticks(sorted(flat["level"].unique()))
    ax.legend(fontsize=7)
    return fig


def plane_figure(plane: Mapping[str, Any], sublevel: float | None = None, title: str = "",
                 levels: int = 30) -> plt.Figure:
    """Filled contours of the loss on the plane, the sublevel set shaded, the points labelled.

    Coordinates are along the orthonormal axes u ∥ B−A and v (Gram-Schmidt of C−A) from A.
    A marker's label carries the point's distance from the plane when it is off it.
    """
    x, y, loss = _np(plane["x"]), _np(plane["y"]), _np(plane["loss"])
    fig, ax = plt.subplots(figsize=(7.2, 6), layout="constrained")
    log_loss = np.log10(np.clip(np.nan_to_num(loss, nan=np.nanmax(loss)), 1e-12, None))
    filled = ax.contourf(x, y, log_loss, levels=levels, cmap="viridis_r")
    fig.colorbar(filled, ax=ax, label="log10 training loss")
    if sublevel is not None and np.nanmin(loss) <= sublevel:
        ax.contourf(x, y, loss, levels=[np.nanmin(loss) - 1, sublevel],
                    cmap=ListedColormap(["#0b5d1e"]), alpha=0.75)
        ax.contour(x, y, loss, levels=[sublevel], colors="white", linewidths=1.2)
    coords, dist = _np(plane["coords"]), _np(plane["distance"])
    names = plane.get("math", plane["labels"])
    scale = max(np.ptp(x), np.ptp(y))
    for i, (name, (cx, cy), d) in enumerate(zip(names, coords, dist)):
        marker = "*" if i < 3 else "o"
        ax.plot(cx, cy, marker, color="white" if i < 3 else "#ff7f0e", mec="black",
                ms=13 if i < 3 else 8)
        off = f" (d={d:.2g})" if d > 1e-3 * scale else ""
        ax.annotate(name + off, (cx, cy), textcoords="offset points", fontsize=8,
                    xytext=(6, 5) if i % 2 == 0 else (6, -13),
                    color="black", bbox=dict(boxstyle="round,pad=0.15", fc="white", alpha=0.7,
                                             lw=0))
    subtitle = f"; shaded: loss ≤ {sublevel:.3g}" if sublevel is not None else ""
    ax.set(xlabel="u  (along B − A)", ylabel="v  (C − A, orthogonalized)",
           title=(title or "training loss on the plane through A, B, C") + subtitle)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    return fig


def surface_figure(surface: Mapping[str, Any], title: str = "", log: bool = True) -> plt.Figure:
    """A filter-normalized surface as contours (left) and in 3D (right)."""
    x, y, loss = _np(surface["x"]), _np(surface["y"]), _np(surface["loss"])
    z = np.log10(np.clip(loss, 1e-12, None)) if log else loss
    zlabel = "log10 training loss" if log else "training loss"
    fig = plt.figure(figsize=(11, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    filled = ax.contourf(x, y, z, levels=25, cmap="viridis")
    ax.contour(x, y, z, levels=12, colors="k", linewidths=0.4, alpha=0.6)
    ax.plot(0, 0, "*", color="white", mec="black", ms=12)
    fig.colorbar(filled, ax=ax, label=zlabel)
    ax.set(xlabel="δ (filter-normalized)", ylabel="η (filter-normalized)", aspect="equal",
           title=title or surface.get("math", ""))
    ax.grid(False)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    gx, gy = np.meshgrid(x, y)
    ax3.plot_surface(gx, gy, z, cmap="viridis", linewidth=0, antialiased=True)
    ax3.set(xlabel="δ", ylabel="η", zlabel=zlabel)
    n = surface.get("examples")
    ax3.set_title(f"{n} examples" if n else "")
    return fig


def surface_sweep(surfaces: Sequence[Mapping[str, Any]], title: str = "") -> plt.Figure:
    """Contours of one surface evaluated on more and more examples (how the shape settles)."""
    k = len(surfaces)
    fig, axes = plt.subplots(1, k, figsize=(3.4 * k, 3.4), layout="constrained", squeeze=False)
    zs = [np.log10(np.clip(_np(s["loss"]), 1e-12, None)) for s in surfaces]
    lo, hi = min(z.min() for z in zs), max(z.max() for z in zs)
    levels = np.linspace(lo, hi + 1e-9, 25)
    for ax, s, z in zip(axes[0], surfaces, zs):
        filled = ax.contourf(_np(s["x"]), _np(s["y"]), z, levels=levels, cmap="viridis")
        ax.set(title=f"{s.get('examples', '?')} examples", aspect="equal")
        ax.grid(False)
    fig.colorbar(filled, ax=axes[0].tolist(), label="log10 training loss")
    if title:
        fig.suptitle(title)
    return fig


def surfaces_side_by_side(surfaces: Sequence[Mapping[str, Any]], titles: Sequence[str],
                          suptitle: str = "") -> plt.Figure:
    """Several filter-normalized surfaces as contours on one colour scale (Bain's Figs 3, 4).

    One scale makes the comparison honest: a sharper basin shows as tighter contours, not as a
    rescaled colour map.
    """
    k = len(surfaces)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 4.0), layout="constrained", squeeze=False)
    zs = [np.log10(np.clip(_np(s["loss"]), 1e-12, None)) for s in surfaces]
    lo, hi = min(z.min() for z in zs), max(z.max() for z in zs)
    levels = np.linspace(lo, hi + 1e-9, 25)
    for ax, s, z, title in zip(axes[0], surfaces, zs, titles):
        filled = ax.contourf(_np(s["x"]), _np(s["y"]), z, levels=levels, cmap="viridis")
        ax.contour(_np(s["x"]), _np(s["y"]), z, levels=levels[::3], colors="k", linewidths=0.4,
                   alpha=0.6)
        ax.plot(0, 0, "*", color="white", mec="black", ms=11)
        ax.set(title=title, xlabel="δ (filter-normalized)", ylabel="η", aspect="equal")
        ax.grid(False)
    fig.colorbar(filled, ax=axes[0].tolist(), label="log10 training loss")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
