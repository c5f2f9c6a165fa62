"""The claims at a glance: a forest plot of every claim's overall effect (the report's claims page)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter

from lthkit.verdicts.claims import sign_of

LINEAR_WITHIN = 5.0  # margins: the axis is linear within +-5 margins, logarithmic beyond
VERDICT_COLORS = {"holds": "#1a7f37", "mixed": "#c77700", "negligible": "#1f4e99",
                  "does not hold": "#e0457b", "reversed": "#b00020", "inconclusive": "#777777"}
# The symlog axis is labelled at 0, the margins and at most this many decades a side (5 and 10
# sit a third of a decade apart where the linear part meets the logarithmic one: no 5).
DECADES_SHOWN = 3


def symlog_ticks(reach: float) -> list[float]:
    """0, +-1 and decades up to 10 x `reach` (every other one, or sparser, beyond three), so
    no two labels crowd each other."""
    top = max(1, math.ceil(math.log10(max(reach, 1.0))) + 1)
    step = math.ceil(top / DECADES_SHOWN)
    decades = [10.0 ** j for j in range(top, 0, -step)]
    return sorted({0.0, 1.0, -1.0, *decades, *(-d for d in decades)})


def claims_forest(table: pd.DataFrame) -> plt.Figure:
    """One row per claim (a claims.csv frame): the overall effect A - B taken in the claimed
    direction and its interval (widened by any certified bound), in units of the claim's
    margin, against 0 and the margins +-1, coloured by verdict. A claim whose margin is 0 is
    drawn in units of its interval's reach. A row with no interval says why beside its name (one
    replicate, values left out and the key to change). The axis is linear within LINEAR_WITHIN
    margins and logarithmic beyond, so one large effect does not squeeze the others onto 0."""
    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(9, 0.32 * n + 1.4))
    labels, reach = [], LINEAR_WITHIN
    for i, (_, c) in enumerate(table.iterrows()):
        sign = sign_of(str(c["expect"]))
        effect, low, high = (sign * float(c[k]) for k in ("effect", "effect low", "effect high"))
        low, high = sorted((low, high))
        margin = float(c["margin"]) if not pd.isna(c["margin"]) else 0.0
        unit = margin if margin > 0 else max(abs(low), abs(high), abs(effect), 1e-12)
        y = n - 1 - i
        color = VERDICT_COLORS.get(str(c["verdict"]), "#777777")
        if math.isfinite(low) and math.isfinite(high):
            ax.plot([low / unit, high / unit], [y, y], "-", color=color, lw=2)
            reach = max(reach, abs(low / unit), abs(high / unit))
        if math.isfinite(effect):
            ax.plot([effect / unit], [y], "o", color=color)
            reach = max(reach, abs(effect / unit))
        labels.append(f"{c['claim']}{_why_no_interval(c, low, high, margin)}")
    decades = math.log10(max(reach / LINEAR_WITHIN, 1.0))  # the linear part keeps its share
    ax.set_xscale("symlog", linthresh=LINEAR_WITHIN, linscale=max(2.0, decades))
    ax.xaxis.set_major_locator(FixedLocator(symlog_ticks(reach)))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_ylim(-0.7, n - 0.3)
    ax.axvline(0, color="black", lw=1)
    for x in (-1, 1):
        ax.axvline(x, color="0.5", lw=1, ls="--")
    ax.set_yticks(range(n - 1, n - 1 - len(labels), -1), labels, fontsize=8)
    ax.set_xlabel("overall effect as claimed, in units of the claim's margin\n"
                  f"(dashed: +-margin; logarithmic beyond +-{LINEAR_WITHIN:g})", fontsize=9)
    handles = [plt.Line2D([], [], color=col, marker="o", lw=2, label=v)
               for v, col in VERDICT_COLORS.items()]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Claims: mean over replicates of each one's mean difference across levels, "
                 "95% t-interval", fontsize=9)
    fig.tight_layout()
    return fig


def _why_no_interval(c: pd.Series, low: float, high: float, margin: float) -> str:
    """What a row's label says besides the claim: why it has no interval, or no margin."""
    if math.isfinite(low) and math.isfinite(high):
        return "" if margin > 0 else " (no margin)"
    replicates = int(c.get("replicates", 0) or 0)
    why = c.get("why left out")
    if replicates == 0 and not (isinstance(c.get("levels"), str) and c.get("levels")):
        return " (not measured in this run)"
    if isinstance(why, str) and why:
        return f" (left out: {why})"
    if replicates < 2:
        return f" ({replicates} replicate{'s' if replicates != 1 else ''}: no interval)"
    return " (no interval)"
