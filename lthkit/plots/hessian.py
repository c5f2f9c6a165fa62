"""Hessian figures: top-k spectra of point pairs (Figs 5, 7, 10, 11, 16, 18, 20, 21), V'(k)
against level (Tables I and III drawn, Fig 22), the flip of Table V, trace and spectral density."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lthkit.analysis.hessian import (APPENDIX_CHOICE_FIGURES, PRUNING_CHOICE_FIGURES,
                                     baseline_solution, imp_solution)
from lthkit.plots.replicates import faint_replicates, replicates_note

__all__ = ["eigenvalue_comparison", "volume_by_level", "flip_figure", "fig22_volume_k",
           "density_figure", "trace_figure", "prune_fraction_sweep_figure", "choice_eigenvalues",
           "points_volume_by_level"]


def _np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x, dtype=float)


def _log_volume(values: np.ndarray, k: int) -> float:
    top = np.sort(values)[::-1][:k]
    return float(np.log(top[top > 0]).sum())


def eigenvalue_comparison(spectra: Mapping[str, Any], k: int | None = None, title: str = "",
                          log: bool = True) -> plt.Figure:
    """Top-k eigenvalues against rank for each labelled spectrum, V'(k) in the legend.

    Only positive eigenvalues are drawn on the log axis (they are the ones V'(k) sums).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, values in spectra.items():
        lam = np.sort(_np(values))[::-1]
        kk = k or len(lam)
        lam = lam[:kk]
        rank = np.arange(1, len(lam) + 1)
        keep = lam > 0 if log else np.ones_like(lam, dtype=bool)
        ax.plot(rank[keep], lam[keep], marker="o", ms=2.5, lw=1.2,
                label=f"{label}   V'({kk}) = {_log_volume(lam, kk):.2f}")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("rank i")
    ax.set_ylabel(r"eigenvalue $\lambda_i$ of the Hessian")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def volume_by_level(table: pd.DataFrame, columns: Sequence[str], labels: Sequence[str],
                    title: str = "", paper: Sequence[str] | None = None,
                    others: Sequence[pd.DataFrame] = ()) -> plt.Figure:
    """V'(k) against level for the given columns of a volume table (published values dashed);
    `others`: the same table of the other replicates, drawn faintly behind."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (col, label) in enumerate(zip(columns, labels)):
        color = f"C{i}"
        faint_replicates(ax, others, col, color)
        ax.plot(table.index, table[col], marker="o", color=color, label=f"{label} (ours)")
        if paper and paper[i] in table and table[paper[i]].notna().any():
            ax.plot(table.index, table[paper[i]], ls="--", marker="x", color=color,
                    label=f"{label} (paper)")
    replicates_note(ax, others)
    ax.set_xlabel("level L")
    ax.set_ylabel(r"$V'(k) = \sum_{i \leq k} \log \lambda_i$  (inverse volume)")
    ax.set_xticks(list(table.index))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def points_volume_by_level(table: pd.DataFrame, k: int, points: Sequence[str], title: str = "",
                           others: Sequence[pd.DataFrame] = ()) -> plt.Figure:
    """Tables I and III drawn: V'(k) of each named point against level (its `V'(k) <point>`
    column), the paper's `paper <point>` column dashed where the table has it."""
    return volume_by_level(table, [f"V'({k}) {p}" for p in points], points, title=title,
                           paper=[f"paper {p}" for p in points], others=others)


def flip_figure(rows: pd.DataFrame, title: str = "") -> plt.Figure:
    """Table V for one level pair: V'(k) of both solutions in each of the two spaces (bars)."""
    value = [c for c in rows.columns if c.startswith("V'(")][0]
    spaces = list(dict.fromkeys(rows.index.get_level_values("space")))
    fig, axes = plt.subplots(1, len(spaces), figsize=(4.2 * len(spaces), 3.8), squeeze=False)
    for ax, space in zip(axes[0], spaces):
        part = rows.xs(space, level="space")
        names = list(part.index.get_level_values("solution"))
        values = part[value].to_numpy()
        bars = ax.bar(range(len(values)), values, color=["C0", "C1"][:len(values)])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(range(len(values)), [n.replace(" (", "\n(") for n in names], fontsize=7)
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = max(hi - lo, abs(hi) * 0.01, 1e-3)
        ax.set_ylim(lo - 2 * pad, hi + pad)
        ax.set_title(f"{space} space: smaller V' = larger volume", fontsize=9)
        ax.set_ylabel(value)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def fig22_volume_k(table: pd.DataFrame, ks: Sequence[int], title: str = "") -> plt.Figure:
    """Fig 22: V'(k) against level, one panel per k, W_min(L) against Pr_L(min(L-1))."""
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks), 3.4), squeeze=False)
    for ax, k in zip(axes[0], ks):
        ax.plot(table.index, table[f"W_min(L) k={k}"], marker="o", label=r"$W_{min(L)}$")
        ax.plot(table.index, table[f"Pr_L(min(L-1)) k={k}"], marker="s",
                label=r"$Pr_L(min(L-1))$")
        ax.set_title(f"top-{k}", fontsize=10)
        ax.set_xlabel("level L")
        ax.set_xticks(list(table.index))
    axes[0][0].set_ylabel("V'(k)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def density_figure(curves: Mapping[str, tuple[Any, Any]], title: str = "") -> plt.Figure:
    """Spectral densities (SLQ, Gaussian-broadened) on a log axis, one curve per label."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    top = 0.0
    for label, (grid, density) in curves.items():
        d = _np(density)
        top = max(top, float(d.max()))
        ax.semilogy(_np(grid), d, lw=1.2, label=label)
    ax.set_ylim(top * 1e-7, top * 3)  # seven decades under the peak; the tails go to ~0
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (SLQ)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def trace_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Hutchinson trace of the masked Hessian against level, with ±2 standard errors."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    err = 2 * table["std_error"].fillna(0)
    ax.errorbar(table.index, table["trace"], yerr=err, marker="o", capsize=3)
    ax.set_xlabel("level L")
    ax.set_ylabel("trace of the Hessian in level L space")
    ax.set_xticks(list(table.index))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def prune_fraction_sweep_figure(table: pd.DataFrame, title: str = "",
                                others: Sequence[pd.DataFrame] = ()) -> plt.Figure:
    """Result 3's sweep: the training loss and V'(k) of W_min(L-1) pruned of each fraction of
    its weights in one step, against the fraction (other replicates faint)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, column, label in ((axes[0], "loss", "training loss"),
                              (axes[1], "V'(k)", f"V'({int(table['k'].iloc[0])})")):
        for other in others:
            ax.plot(other["fraction"], other[column], "-", color="C0", alpha=0.25, lw=1)
        ax.plot(table["fraction"], table[column], "o-", color="C0")
        ax.set_xlabel("fraction of the alive weights pruned in one step")
        ax.set_ylabel(label)
    axes[1].set_title("larger V': smaller volume", fontsize=9)
    fig.suptitle(title or "Result 3: pruning more in one step", fontsize=10)
    fig.tight_layout()
    return fig


def choice_eigenvalues(analysis: Any, imp: Any, baselines: Any, figure: int, level: int,
                       k: int) -> plt.Figure:
    """Figs 10, 11, 18, 20, 21 (notebook 08) and the appendix's 30, 32 (09): W_min(L)'s top-k
    eigenvalues against those of the baseline the figure compares, at one level."""
    kind, what = {**PRUNING_CHOICE_FIGURES, **APPENDIX_CHOICE_FIGURES}[figure]
    spectra = analysis.eigenvalues(imp_solution(imp, level),
                                   baseline_solution(baselines, kind, level))
    return eigenvalue_comparison(spectra, k, title=f"Fig {figure}, level {level}: W_min(L) "
                                 f"against {what}")
