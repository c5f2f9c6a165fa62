"""The claims page: the opening of index.html (a forest plot, the claims table, the rule, the
family note) and each claim's table level by level, from claims.csv and the notebooks' tables.

The table reads without scrolling sideways in a 1400 px window: the statement's column wraps,
the paper's sentence and the source fold into a details row under it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from lthkit.store.files import atomic_write_bytes
from lthkit.verdicts.claims import (DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, NEGLIGIBLE, REVERSED,
                                    RULE, family_note, margins_note)

__all__ = ["claims_html", "STYLE", "verdict_class"]

# The page's style for the claims: fixed layout so long sentences wrap instead of widening it.
STYLE = """table.claims{width:100%;max-width:1360px;table-layout:fixed;border-collapse:collapse}
table.claims td,table.claims th{vertical-align:top;overflow-wrap:anywhere}
table.claims col.statement{width:34%} table.claims col.claim{width:10%}
table.claims col.verdict{width:8%} table.claims col.effect{width:16%}
table.claims details{font-size:85%;color:#333}
.holds{color:#1a7f37} .reversed{color:#b00020} .mixed{color:#8a4b00}
.negligible{color:#1f4e99} .does-not-hold{color:#b00020} .inconclusive{color:#666}"""

# What each level count in the table abbreviates.
COUNTS = ((HOLDS, "h"), (REVERSED, "r"), (NEGLIGIBLE, "n"), (DOES_NOT_HOLD, "d"),
          (INCONCLUSIVE, "i"))


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict (its words joined by hyphens)."""
    return verdict.replace(" ", "-")


def claims_html(run_dir: Path, margins: Mapping[str, float] | None = None) -> str:
    """The opening of index.html: a forest plot of every claim's overall effect, the claims of
    the series (claims.csv) with verdict, effect, interval, margin, level counts and replicates
    needed, each linked to its table level by level, then the family note, the rule and the
    margins in force."""
    path = run_dir / "claims.csv"
    try:
        table = pd.read_csv(path) if path.exists() else pd.DataFrame()
    except (OSError, ValueError, pd.errors.EmptyDataError):
        table = pd.DataFrame()
    if table.empty:
        return ("<h2>Claims</h2><p>No notebook of this series has saved claims yet "
                "(notebooks 02-11 do).</p>")
    forest = _forest_png(run_dir, table)
    rows = [_claim_row(run_dir, c) for _, c in table.iterrows()]
    kinds = [k for k in table["margin kind"].dropna().astype(str)]
    legend = ", ".join(f"{a} {v}" for v, a in COUNTS)
    return (f"<h2>Claims</h2>\n{forest}\n"
            f"<p><b>{html.escape(family_note(table))}</b></p>\n"
            "<table class='claims'><colgroup><col class='claim'><col class='statement'>"
            "<col class='verdict'><col class='effect'><col><col><col><col><col></colgroup>"
            "<tr><th>claim</th><th>statement</th><th>verdict</th>"
            "<th>effect A - B [95% interval]</th><th>margin</th>"
            f"<th>levels ({legend})</th><th>values left out</th><th>replicates</th>"
            f"<th>replicates needed</th></tr>\n{''.join(rows)}</table>\n"
            f"<p>{html.escape(RULE)} (<a href=\"claims.csv\">claims.csv</a>)</p>\n"
            f"<p>{html.escape(margins_note(margins, kinds))}</p>\n"
            f"{_claim_levels_html(run_dir, table)}")


def _claim_row(run_dir: Path, c: pd.Series) -> str:
    """One claim: its row, and a details row with the source, notebook and quoted sentence."""
    nb = str(c["notebook"])
    link = next((f'<a href="notebooks/{nb}.{ext}">{html.escape(nb)}</a>'
                 for ext in ("html", "ipynb")
                 if (run_dir / "notebooks" / f"{nb}.{ext}").exists()), html.escape(nb))
    verdict, key, count = str(c["verdict"]), str(c["claim"]), int(c["replicates"])
    holm = c.get("holds after Holm")
    if verdict == HOLDS and str(holm).lower() == "false":
        shown = f"{verdict}<br><small>(not after Holm)</small>"
    else:
        shown = html.escape(verdict)
    counts = " / ".join(str(int(c.get(f"levels {v}", 0) or 0)) for v, _ in COUNTS)
    why = c.get("why left out")
    left = f"{int(c['left out'])}" + (f" ({html.escape(str(why))})"
                                      if isinstance(why, str) and why else "")
    return (f"<tr><td><a href=\"#claim-{html.escape(key)}\">{html.escape(key)}</a></td>"
            f"<td>{html.escape(str(c['statement']))}"
            f"<details><summary>{html.escape(str(c['source']))}, {link}</summary>"
            f"{_quote_html(c.get('quote'))}</details></td>"
            f"<td class='{verdict_class(verdict)}'><b>{shown}</b></td>"
            f"<td>{_number(c['effect'])} {_interval(c, count)}</td>"
            f"<td>{_number(c['margin'])}</td><td>{counts}</td><td>{left}</td><td>{count}</td>"
            f"<td>{_needed(c, verdict, count)}</td></tr>")


def _interval(c: pd.Series, count: int) -> str:
    low, high = _number(c["effect low"]), _number(c["effect high"])
    if low and high:
        bound = _number(c.get("bound"))
        widened = f" (incl. bound {bound})" if bound and float(c.get("bound")) > 0 else ""
        return f"[{low}, {high}]{widened}"
    if count == 0 and not (isinstance(c.get("levels"), str) and c.get("levels")):
        return "(no level of this run measures it)"
    return f"(no interval: {count} replicate{'s' if count != 1 else ''})"


def _needed(c: pd.Series, verdict: str, count: int) -> str:
    needed = c.get("replicates needed")
    if verdict != INCONCLUSIVE:
        return ""
    if count < 2 and pd.isna(needed):
        return "more than 1 (no spread yet)"
    return "" if pd.isna(needed) else str(int(needed))


def _quote_html(quote: object) -> str:
    """The paper's sentence a claim tests."""
    if not isinstance(quote, str) or not quote.strip():
        return ""
    return f"<i>&ldquo;{html.escape(quote)}&rdquo;</i>"


def _number(x: Any) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return ""
    return "" if value != value else f"{value:.4g}"


def _forest_png(run_dir: Path, table: pd.DataFrame) -> str:
    """claims_forest.png in the run folder (atomically), as the page's opening figure."""
    import matplotlib.pyplot as plt

    from lthkit.plots import claims_forest

    fig = claims_forest(table)
    target = run_dir / "claims_forest.png"
    atomic_write_bytes(target, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return ('<p><img src="claims_forest.png" style="width:900px;max-width:100%" '
            'alt="forest plot of the claims"></p>')


def _claim_levels_html(run_dir: Path, table: pd.DataFrame) -> str:
    """Each claim's table level by level (tables/claim_levels_<notebook>.csv), under an anchor
    the claims table links to."""
    from lthkit.verdicts.paper_claims import claim_levels_file

    shown = ["level", "A", "B", "difference", "difference low", "difference high", "bound",
             "margin", "replicates", "left out", "why left out", "as claimed", "verdict",
             "pooled verdict"]
    parts = ["<h2>Claims level by level</h2>"]
    for nb in dict.fromkeys(table["notebook"].astype(str)):
        path = run_dir / "tables" / claim_levels_file(nb)
        try:
            levels = pd.read_csv(path, index_col=0) if path.exists() else pd.DataFrame()
        except (OSError, ValueError, pd.errors.EmptyDataError):
            levels = pd.DataFrame()
        if levels.empty or "claim" not in levels:
            continue
        for key, rows in levels.groupby("claim", sort=False):
            cols = [c for c in shown if c in rows]
            body = rows[cols].to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}",
                                      border=0)
            parts.append(f'<h3 id="claim-{html.escape(str(key))}">{html.escape(str(key))}: '
                         f"{html.escape(str(rows['relation'].iloc[0]))}</h3>\n{body}")
    return "\n".join(parts) if len(parts) > 1 else ""
