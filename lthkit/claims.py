"""Claim verdicts: does a statement of a paper hold on this run, level by level?

A claim compares two sides per level: side A (e.g. V'(100) at W_min(L)) is expected to be
*less* or *greater* than side B (V'(100) at Pr_L(min(L-1))), or than a fixed threshold. The
measured values come one per replicate (independent seeds). The rule, stated once here and
printed under every claims table:

* per level, the paired differences A − B across replicates get a 95% t-interval
  (`lthkit.stats.t_interval`); the claim **holds** at that level when the interval lies wholly on
  the claimed side of 0, **does not hold** when it lies wholly on the other side, and is
  **inconclusive** when it contains 0 or when there is one replicate (no interval);
* over the levels tested, the claim **holds** when it holds at more than half of them and fails
  at none, **does not hold** when it fails at more than half, and is **inconclusive** otherwise.

Paired differences because replicate r of both sides comes from the same seed (same data order,
same initialization): pairing removes the seed's shared part of the variance. Rules never look at
a paper's published numbers (`lthkit.published` only puts those beside ours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from .stats import CONFIDENCE, t_interval

__all__ = ["Claim", "Verdict", "level_verdict", "overall_verdict", "claim_table",
           "claims_frame", "RULE", "HOLDS", "FAILS", "INCONCLUSIVE"]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
Verdict = Literal["holds", "does not hold", "inconclusive"]
Expect = Literal["less", "greater"]

RULE = (f"Verdict per level: the {CONFIDENCE:.0%} t-interval of the paired differences A - B "
        "across replicates lies wholly on the claimed side of 0 (holds), wholly on the other "
        "side (does not hold), or contains 0 / only one replicate (inconclusive). Over the "
        "levels: holds at more than half and fails at none (holds), fails at more than half "
        "(does not hold), else inconclusive. Published numbers never enter a verdict.")


@dataclass(frozen=True)
class Claim:
    """A paper's statement as a comparison of two measured sides, A `expect` B."""

    key: str            # short id, e.g. "R1-table1"
    source: str         # where it is stated, e.g. "Saleem et al., Result 1 (Table I)"
    statement: str      # the statement in words
    quantity: str       # what is measured, e.g. "V'(100) in level L space"
    a: str              # side A, e.g. "W_min(L)"
    b: str              # side B, e.g. "Pr_L(min(L-1))", or a threshold's name
    expect: Expect      # A is expected to be less than B, or greater
    notebook: str = ""  # the notebook that measures it

    @property
    def relation(self) -> str:
        return f"{self.a} {'<' if self.expect == 'less' else '>'} {self.b}"


def level_verdict(a: Sequence[float], b: Sequence[float], expect: Expect,
                  confidence: float = CONFIDENCE) -> dict[str, object]:
    """The verdict at one level from the replicates' values of both sides (paired by position).

    Returns the means, the interval of the difference, how many replicates point the claimed
    way, and the verdict. Pairs with a NaN on either side are dropped.
    """
    pairs = [(float(x), float(y)) for x, y in zip(a, b)
             if not (math.isnan(float(x)) or math.isnan(float(y)))]
    diffs = [x - y for x, y in pairs]
    interval = t_interval(diffs, confidence)
    sign = -1.0 if expect == "less" else 1.0
    agree = sum(1 for d in diffs if sign * d > 0)
    if interval.n < 2 or not interval.excludes(0.0):
        verdict: Verdict = INCONCLUSIVE
    else:
        verdict = HOLDS if sign * interval.mean > 0 else FAILS
    return {"A": t_interval([x for x, _ in pairs], confidence).mean,
            "B": t_interval([y for _, y in pairs], confidence).mean,
            "difference": interval.mean, "difference low": interval.low,
            "difference high": interval.high, "replicates": interval.n,
            "as claimed": f"{agree}/{interval.n}", "verdict": verdict}


def overall_verdict(verdicts: Iterable[str]) -> Verdict:
    """Holds at more than half of the levels and fails at none; fails at more than half; else
    inconclusive (also when no level was tested)."""
    v = list(verdicts)
    if not v:
        return INCONCLUSIVE
    holds, fails = v.count(HOLDS), v.count(FAILS)
    if fails == 0 and holds > len(v) / 2:
        return HOLDS
    if fails > len(v) / 2:
        return FAILS
    return INCONCLUSIVE


def claim_table(claim: Claim, values: Mapping[int, tuple[Sequence[float], Sequence[float]]],
                confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per level (values: {level: (A per replicate, B per replicate)}) and a last row
    'all' with the overall verdict."""
    rows = []
    for level in sorted(values):
        a, b = values[level]
        rows.append({"level": level, **level_verdict(a, b, claim.expect, confidence)})
    overall = overall_verdict(r["verdict"] for r in rows)
    rows.append({"level": "all", "A": np.nan, "B": np.nan, "difference": np.nan,
                 "difference low": np.nan, "difference high": np.nan,
                 "replicates": max((r["replicates"] for r in rows), default=0),
                 "as claimed": f"{sum(r['verdict'] == HOLDS for r in rows)}/{len(rows)} levels",
                 "verdict": overall})
    table = pd.DataFrame(rows)
    for col, value in (("claim", claim.key), ("relation", claim.relation),
                       ("quantity", claim.quantity)):
        table.insert(0, col, value)
    return table


def claims_frame(tables: Iterable[tuple[Claim, pd.DataFrame]]) -> pd.DataFrame:
    """The overall verdict of several claims, one row each (the report's opening table)."""
    rows = []
    for claim, table in tables:
        last = table[table["level"] == "all"].iloc[0]
        per_level = table[table["level"] != "all"]
        rows.append({"notebook": claim.notebook, "claim": claim.key, "source": claim.source,
                     "statement": claim.statement, "quantity": claim.quantity,
                     "relation": claim.relation,
                     "levels": ", ".join(str(lv) for lv in per_level["level"]),
                     "levels held": int((per_level["verdict"] == HOLDS).sum()),
                     "levels failed": int((per_level["verdict"] == FAILS).sum()),
                     "levels inconclusive": int((per_level["verdict"] == INCONCLUSIVE).sum()),
                     "replicates": int(last["replicates"]), "verdict": last["verdict"]})
    return pd.DataFrame(rows)
