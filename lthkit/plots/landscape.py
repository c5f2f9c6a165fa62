"""Figures of the loss landscape: lines (Figs 9, 12, 17, 19), basin radii (Figs 6, 8), the plane
through three solutions (Fig 13) and filter-normalized surfaces (Li et al. 2018; Bain).

Each takes the plain dicts that `lthkit.analysis.landscape` returns (and caches) and returns a
Figure.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator

from lthkit.plots.imp import STRATEGY_STYLE, percent_axis, plain_log_ticks
from lthkit.plots.replicates import FAINT, faint_replicates, replicates_note

__all__ = ["line_figure", "barrier_summary", "radius_histograms", "radius_summary",
           "cutoff_rule_text",
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
    plain_log_ticks(ax_loss)
    ax_loss.legend(fontsize=7)
    if with_acc:
        percent_axis(axes[0, 1], np.concatenate([100 * _np(ln["acc"]) for ln in lines]),
                     "training accuracy (%)")
    if title:
        fig.suptitle(title)
    return fig


def barrier_summary(table: pd.DataFrame, title: str = "",
                    others: Sequence[pd.DataFrame] = ()) -> plt.Figure:
    """Barrier height against level, one series per pair of points (columns figure, series);
    `others`: the same table of the other replicates, drawn faintly behind."""
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    markers = "osD^vPX*"  # one per series, so that series lying on each other stay visible
    for i, ((figure, series), rows) in enumerate(table.groupby(["figure", "series"], sort=False)):
        for other in others:
            o = other[(other["figure"] == figure) & (other["series"] == series)]
            ax.plot(o["level"], o["barrier"], "-", color=f"C{i}", alpha=FAINT, lw=1)
        ax.plot(rows["level"], rows["barrier"], "-", marker=markers[i % len(markers)],
                color=f"C{i}", ms=8 - 0.8 * i, label=f"{figure}: {series}")
    replicates_note(ax, others)
    ax.set(xlabel="level L", ylabel="barrier height (loss)", title=title or "barriers")
    ax.set_xticks(sorted(table["level"].unique()))
    ax.legend(fontsize=7)
    return fig


def cutoff_rule_text(first: Mapping[str, Any], second: Mapping[str, Any]) -> str:
    """The cut-off rule of a radius pair in words, for the figure: which loss L0 it starts from
    and the cut-off c each point was measured under."""
    rule = first.get("cutoff_rule", "")
    if first.get("reference") == "pair_max":
        return (f"one cut-off for both: c = {first['cutoff']:.4g} from L0 = "
                f"{first['reference_loss']:.4g}, the higher of the two losses ({rule})")
    return (f"each its own cut-off from its own loss ({rule}): c = {first['cutoff']:.4g} and "
            f"{second['cutoff']:.4g}")


def radius_histograms(first: Mapping[str, Any], second: Mapping[str, Any], title: str = "",
                      bins: int | None = None) -> plt.Figure:
    """Histograms of the basin radii of two points on shared bins, their means marked (Figs 6, 8),
    with the cut-off rule written under the axes."""
    ra, rb = _np(first["radii"]), _np(second["radii"])
    both = np.concatenate([ra, rb])
    edges = np.histogram_bin_edges(both, bins=bins or min(30, max(5, len(both) // 6)))
    fig, ax = plt.subplots(figsize=(6.5, 4.1), layout="constrained")
    for i, (r, res) in enumerate(((ra, first), (rb, second))):
        ax.hist(r, bins=edges, alpha=0.55, color=f"C{i}",
                label=f"{res['math']}: mean {res['mean']:.4g} (loss {res['center_loss']:.3g})")
        ax.axvline(res["mean"], color=f"C{i}", lw=1.5, ls="--")
    space = first.get("space")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="radius of the basin along a random unit direction", ylabel="directions",
           title=title or (f"basin radius in level {space} space" if space is not None else ""))
    ax.legend(fontsize=8)
    if "cutoff" in first and "cutoff" in second:
        fig.supxlabel(cutoff_rule_text(first, second), fontsize=7, color="0.3")
    return fig


def radius_summary(table: pd.DataFrame, names: Sequence[str] | None = None,
                   title: str = "", others: Sequence[pd.DataFrame] = ()) -> plt.Figure:
    """Mean radius (± std) of both points of each level's pair against level (`radius_table`);
    `others`: the same table of the other replicates, their means drawn faintly behind."""
    names = names or [c.removeprefix("mean_radius ") for c in table.columns
                      if c.startswith("mean_radius ")]
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for i, name in enumerate(names):
        faint_replicates(ax, others, f"mean_radius {name}", f"C{i}")
        ax.errorbar(table.index, table[f"mean_radius {name}"], yerr=table[f"std {name}"],
                    fmt="o-", capsize=3, color=f"C{i}", label=name)
    reference = set(table["reference"]) if "reference" in table else set()
    rule = f" (cut-off: {', '.join(sorted(reference))})" if reference else ""
    replicates_note(ax, others)
    ax.set(xlabel="level L", ylabel="mean basin radius (± std over directions)",
           title=title + rule)
    ax.set_xticks(sorted(table.index.unique()))
    ax.legend(fontsize=7)
    return fig


def _plane_marker(tag: str, index: int, levels: int) -> dict[str, Any]:
    """Marker of a point on Fig 13: A, B, C big stars; IMP solutions circles shaded by level;
    each baseline its strategy's colour and marker (as in Fig 2)."""
    kind, level = tag[:-2], int(tag[-2:])
    if kind == "imp":
        colour = plt.get_cmap("Blues")(0.35 + 0.6 * level / max(levels, 1))
        return dict(marker="*" if index < 3 else "o", color=colour, ms=16 if index < 3 else 9)
    colour, marker = STRATEGY_STYLE.get(kind, ("0.5", "s"))
    return dict(marker=marker, color=colour, ms=9)


def plane_figure(plane: Mapping[str, Any], sublevel: float | None = None, title: str = "",
                 levels: int = 30) -> plt.Figure:
    """Filled contours of the loss on the plane, the sublevel set shaded, every point marked.

    Coordinates are along the orthonormal axes u ∥ B−A and v (Gram-Schmidt of C−A) from A.
    A, B, C are stars (labelled); other IMP solutions circles shaded by level; baselines the
    marker and colour of their strategy. A point off the plane is drawn hollow at its projection,
    and the legend gives its distance d from the plane.
    """
    x, y, loss = _np(plane["x"]), _np(plane["y"]), _np(plane["loss"])
    fig, ax = plt.subplots(figsize=(7.6, 6.8), layout="constrained")
    log_loss = np.log10(np.clip(np.nan_to_num(loss, nan=np.nanmax(loss)), 1e-12, None))
    filled = ax.contourf(x, y, log_loss, levels=levels, cmap="viridis_r")
    fig.colorbar(filled, ax=ax, label="log10 training loss", shrink=0.8)
    if sublevel is not None and np.nanmin(loss) <= sublevel:
        ax.contourf(x, y, loss, levels=[np.nanmin(loss) - 1, sublevel],
                    cmap=ListedColormap(["#0b5d1e"]), alpha=0.75)
        ax.contour(x, y, loss, levels=[sublevel], colors="white", linewidths=1.2)
    coords, dist = _np(plane["coords"]), _np(plane["distance"])
    names = plane.get("math", plane["labels"])
    tags = plane.get("refs") or [f"imp{i:02d}" for i in range(len(names))]
    scale = max(np.ptp(x), np.ptp(y))
    top = max((int(t[-2:]) for t in tags if t.startswith("imp")), default=1)
    for i, (name, tag, (cx, cy), d) in enumerate(zip(names, tags, coords, dist)):
        style = _plane_marker(tag, i, top)
        off = d > 1e-3 * scale
        label = ("ABC"[i] + " = " if i < 3 else "") + name + (f"   (d = {d:.2g})" if off else "")
        ax.plot(cx, cy, ls="none", marker=style["marker"], ms=style["ms"],
                mec=style["color"] if off else "black", mew=2.2 if off else 0.8,
                mfc="none" if off else style["color"], label=label, zorder=3 + (i < 3))
        if i < 3:
            ax.annotate("ABC"[i], (cx, cy), textcoords="offset points", xytext=(8, 6),
                        fontsize=10, weight="bold", color="white",
                        bbox=dict(boxstyle="round,pad=0.15", fc="black", alpha=0.6, lw=0))
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False,
               title="filled: on the plane; hollow: projected from distance d off it",
               title_fontsize=8)
    subtitle = f"; shaded: loss ≤ {sublevel:.3g}" if sublevel is not None else ""
    ax.set(xlabel="u  (along B − A)", ylabel="v  (C − A, orthogonalized)",
           title=(title or "training loss on the plane through A, B, C") + subtitle)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    return fig


def _round_ticks(colorbar) -> None:
    """A colorbar over filled contours of evenly spaced levels ticks every level boundary
    (0.6928, 0.6059, ...): a few round ticks instead."""
    colorbar.locator = MaxNLocator(6)
    colorbar.update_ticks()


def _recipe_note(fig: plt.Figure, surfaces: Sequence[Mapping[str, Any]], paper: str | None,
                 sweep: bool = False) -> None:
    """The surfaces' BatchNorm handling, directions, draw, data and grid against `paper`'s,
    under the figure (`lthkit.analysis.landscape.surface_recipe`); nothing for a surface without them."""
    from lthkit.analysis.landscape.tables import surface_recipe

    first = surfaces[0]
    if paper is None or "bn" not in first:
        return
    sizes = [s.get("examples", "?") for s in surfaces] if sweep else None
    fig.supxlabel(surface_recipe(first, paper, sizes), fontsize=7, color="0.3")


def surface_figure(surface: Mapping[str, Any], title: str = "", log: bool = True,
                   paper: str | None = "li") -> plt.Figure:
    """A filter-normalized surface as contours (left) and in 3D (right), with how it was made
    against `paper`'s surfaces ("li", "bain") underneath."""
    x, y, loss = _np(surface["x"]), _np(surface["y"]), _np(surface["loss"])
    z = np.log10(np.clip(loss, 1e-12, None)) if log else loss
    zlabel = "log10 training loss" if log else "training loss"
    fig = plt.figure(figsize=(11, 4.9), layout="constrained")
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
    for axis in (ax3.xaxis, ax3.yaxis):  # five ticks at most: the default ones overlap
        axis.set_major_locator(MaxNLocator(5))
    n = surface.get("examples")
    ax3.set_title(f"{n} examples" if n else "")
    _recipe_note(fig, [surface], paper)
    return fig


def surface_sweep(surfaces: Sequence[Mapping[str, Any]], title: str = "",
                  paper: str | None = "li") -> plt.Figure:
    """Contours of one surface evaluated on more and more examples (how the shape settles)."""
    k = len(surfaces)
    fig, axes = plt.subplots(1, k, figsize=(max(3.4 * k, 8.0), 4.0), layout="constrained",
                             squeeze=False)
    zs = [np.log10(np.clip(_np(s["loss"]), 1e-12, None)) for s in surfaces]
    lo, hi = min(z.min() for z in zs), max(z.max() for z in zs)
    levels = np.linspace(lo, hi + 1e-9, 25)
    for ax, s, z in zip(axes[0], surfaces, zs):
        filled = ax.contourf(_np(s["x"]), _np(s["y"]), z, levels=levels, cmap="viridis")
        ax.set(title=f"{s.get('examples', '?')} examples", aspect="equal")
        ax.grid(False)
    _round_ticks(fig.colorbar(filled, ax=axes[0].tolist(), label="log10 training loss"))
    if title:
        fig.suptitle(title)
    _recipe_note(fig, surfaces, paper, sweep=True)
    return fig


def surfaces_side_by_side(surfaces: Sequence[Mapping[str, Any]], titles: Sequence[str],
                          suptitle: str = "", paper: str | None = "bain") -> plt.Figure:
    """Several filter-normalized surfaces as contours on one colour scale (Bain's Figs 3, 4).

    One scale makes the comparison honest: a sharper basin shows as tighter contours, not as a
    rescaled colour map.
    """
    k = len(surfaces)
    fig, axes = plt.subplots(1, k, figsize=(max(4.2 * k, 8.0), 4.4), layout="constrained",
                             squeeze=False)
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
    _round_ticks(fig.colorbar(filled, ax=axes[0].tolist(), label="log10 training loss"))
    _recipe_note(fig, surfaces, paper)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
