"""The other replicates of a run behind a per-level figure: faint lines, one per replicate."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

FAINT = 0.25  # alpha of another replicate's line


def faint_replicates(ax: plt.Axes, others: Sequence[pd.DataFrame], column: str,
                     color: str) -> None:
    """Draw `column` of each other replicate's table (indexed by level) faintly on `ax`."""
    for other in others:
        if column in other:
            ax.plot(other.index, other[column], "-", color=color, alpha=FAINT, lw=1)


def replicates_note(ax: plt.Axes, others: Sequence[pd.DataFrame]) -> None:
    """Say under the axes what the faint lines are (nothing with one replicate)."""
    if others:
        ax.annotate(f"faint: the {len(others)} other replicate(s); strong: this run folder",
                    xy=(0, 0), xycoords="axes fraction", xytext=(0, -36),
                    textcoords="offset points", fontsize=7, color="0.4", va="top")
