"""Claim verdicts: does a statement of a paper hold on this run, level by level and overall?

A claim compares two sides per level: side A (e.g. V'(100) at W_min(L)) is expected to be
*less* or *greater* than side B (V'(100) at Pr_L(min(L-1))), or than a fixed threshold. The
measured values come one per replicate (independent seeds). Each claim's quantity has a margin m,
the smallest effect that matters (`claims.margins`, per kind of quantity: `params.CLAIM_MARGINS`),
so that rounding noise above zero is not an effect. The rule, stated once here and printed under
every claims table (D is the paired difference A - B taken in the claimed direction, so D > 0 is
as claimed):

* per level, the 95% t-interval of D across replicates: **holds** when it lies wholly above +m,
  **does not hold** when it lies wholly below 0 or wholly within [-m, +m] (no effect that
  matters; a zero-width interval at 0 is such a case), **inconclusive** otherwise, and with one
  replicate (no interval);
* a claim of no difference (A = B within the margin, e.g. "a small barrier", two optimizers
  giving the same accuracy) is judged by two one-sided tests at the margin: **holds** when the
  interval lies wholly inside [-m, +m], **does not hold** when it lies wholly outside it,
  inconclusive otherwise (the same 95% interval, which is conservative for the two tests);
* overall, one value per replicate, its mean of D over the levels that every replicate measured
  (so the replicates stay the independent unit), judged by the same rule with the mean margin of
  those levels. This is the claim's verdict; the per-level verdicts are counted beside it.
* for an inconclusive claim, the replicates that would likely settle it at the measured effect d
  and spread s: the smallest n with t(0.975, n-1) s / sqrt(n) <= g, where g is the distance from
  d to the nearest boundary it could settle on (d - m above the margin, m - |d| within it, |d|
  below 0), i.e. the n at which an interval as wide as this spread predicts clears it.

Values that cannot enter (NaN, inf, a spectrum flagged as not converged or with fewer than k
eigenvalues entered) are left out of both sides together and counted per level and per claim.
Paired differences because replicate r of both sides comes from the same seed (same data order,
same initialization): pairing removes the seed's shared part of the variance. Rules never look at
a paper's published numbers (`lthkit.analysis.published` only puts those beside ours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from lthkit.config.report import CLAIM_MARGINS
from lthkit.verdicts.stats import CONFIDENCE, Interval, t_interval

__all__ = ["Claim", "Verdict", "level_verdict", "overall_test", "overall_verdict", "claim_table",
           "claims_frame", "RULE", "HOLDS", "FAILS", "INCONCLUSIVE", "judge", "replicates_needed",
           "margins_note", "Measured"]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
Verdict = Literal["holds", "does not hold", "inconclusive"]
Expect = Literal["less", "greater", "equal", "at_most"]

RULE = (f"D = A - B in the claimed direction, m = the margin of the claim's quantity. Per level: "
        f"the {CONFIDENCE:.0%} t-interval of D across replicates lies wholly above +m (holds), "
        "wholly below 0 or wholly within [-m, +m] (does not hold: no effect that matters), else "
        "inconclusive (also with one replicate). A claim of no difference (A = B) holds when the "
        "interval lies wholly within [-m, +m] and does not hold when it lies wholly outside; one "
        "of A <= B up to the margin holds when it lies wholly below +m, fails wholly above. "
        "Overall: each replicate's mean D over the levels "
        "all replicates measured, judged by the same rule; for an inconclusive claim, replicates "
        "needed = the smallest n with t(0.975, n-1) s / sqrt(n) <= g (s: the spread of those "
        "means, g: the distance from their mean to the nearest boundary it could settle on). "
        "Values that cannot enter (NaN, inf, flagged spectra) are left out and counted. "
        "Published numbers never enter a verdict.")


@dataclass(frozen=True)
class Claim:
    """A paper's statement as a comparison of two measured sides, A `expect` B."""

    key: str            # short id, e.g. "R1-table1"
    source: str         # where it is stated, e.g. "Saleem et al., Result 1 (Table I)"
    statement: str      # the statement in words
    quantity: str       # what is measured, e.g. "V'(100) in level L space"
    a: str              # side A, e.g. "W_min(L)"
    b: str              # side B, e.g. "Pr_L(min(L-1))", or a threshold's name
    expect: Expect      # A is expected to be less than B, greater, or equal within the margin
    notebook: str = ""  # the notebook that measures it
    margin: str = ""    # the kind of quantity, a key of claims.margins ("" : margin 0)
    quote: str = ""     # the paper's sentence it tests (symbols restored in brackets)

    @property
    def relation(self) -> str:
        if self.expect == "equal":
            return f"{self.a} = {self.b} within the margin"
        if self.expect == "at_most":
            return f"{self.a} <= {self.b} + the margin"
        return f"{self.a} {'<' if self.expect == 'less' else '>'} {self.b}"


@dataclass(frozen=True)
class Measured:
    """One level's values across replicates: both sides, the scale a relative margin is taken
    of (NaN: |B|), and why a replicate's value cannot enter ('' where it can)."""

    a: Sequence[float]
    b: Sequence[float]
    scale: Sequence[float] | None = None
    notes: Sequence[str] | None = None


def sign_of(expect: str) -> float:
    """+1 when A > B (or A = B) is claimed, -1 when A < B: D = sign * (A - B)."""
    return -1.0 if expect == "less" else 1.0


def judge(interval: Interval, margin: float, sign: float = 1.0,
          equivalence: bool = False, at_most: bool = False) -> Verdict:
    """The rule on the interval of A - B, `sign` +1 when A > B is claimed, -1 for A < B. With
    `equivalence` (A = B claimed, two one-sided tests at the margin): holds when the interval
    lies wholly inside [-m, +m], does not hold when it lies wholly outside it. With `at_most`
    (A <= B up to the margin, a one-sided test of non-inferiority): holds when the interval lies
    wholly below +m, does not hold when it lies wholly above it."""
    if interval.n < 2 or not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return INCONCLUSIVE
    low, high = sorted((sign * interval.low, sign * interval.high))
    if at_most:
        return HOLDS if high <= margin else FAILS if low > margin else INCONCLUSIVE
    if equivalence:
        if -margin <= low and high <= margin and margin > 0:
            return HOLDS
        if low > margin or high < -margin:
            return FAILS
        return INCONCLUSIVE
    if low > margin:
        return HOLDS
    if high < 0 or (low >= -margin and high <= margin):
        return FAILS
    return INCONCLUSIVE


def replicates_needed(mean: float, spread: float, margin: float,
                      confidence: float = CONFIDENCE, limit: int = 10_000,
                      equivalence: bool = False, at_most: bool = False) -> int | None:
    """Replicates that would likely settle a claim at measured effect `mean` (in the claimed
    direction) and spread `spread` (sd across replicates): the smallest n >= 2 whose t half-width
    t(1 - (1 - confidence)/2, n - 1) * spread / sqrt(n) is at most the distance g from the mean
    to the nearest boundary it could settle on. None when no n up to `limit` does (g = 0)."""
    gaps = []
    if equivalence:  # settles inside [-m, m] (holds) or beyond it (does not hold)
        gaps.append(abs(abs(mean) - margin))
    elif at_most:  # settles below +m (holds) or above it (does not hold)
        gaps.append(abs(mean - margin))
    elif mean > margin:
        gaps.append(mean - margin)             # holds
    if not (equivalence or at_most) and abs(mean) < margin:
        gaps.append(margin - abs(mean))        # within the margin: does not hold
    if not (equivalence or at_most) and mean < 0:
        gaps.append(-mean)                     # the other side of 0: does not hold
    g = max(gaps, default=0.0)
    if not (math.isfinite(mean) and math.isfinite(spread)) or g <= 0:
        return None
    if spread == 0:
        return 2
    q = 0.5 + confidence / 2
    for n in range(2, limit + 1):
        if sps.t.ppf(q, n - 1) * spread / math.sqrt(n) <= g:
            return n
    return None


def _entering(m: Measured) -> tuple[list[tuple[float, float, float]], list[str]]:
    """The replicates' (A, B, scale) that can enter, and the reason each other one cannot."""
    n = len(m.a)
    scales = list(m.scale) if m.scale is not None else [math.nan] * n
    notes = list(m.notes) if m.notes is not None else [""] * n
    kept, left_out = [], []
    for x, y, s, note in zip(m.a, m.b, scales, notes):
        x, y, s = float(x), float(y), float(s)
        if note:
            left_out.append(note)
        elif not (math.isfinite(x) and math.isfinite(y)):
            left_out.append("not finite")
        else:
            kept.append((x, y, abs(y) if math.isnan(s) else abs(s)))
    return kept, left_out


def margin_of(kind: str, margins: Mapping[str, float] | None, scales: Sequence[float]) -> float:
    """The margin of a quantity kind at a level: absolute, or a fraction of the mean scale."""
    if not kind:
        return 0.0
    value = (margins or {}).get(kind, CLAIM_MARGINS[kind][0])
    if CLAIM_MARGINS[kind][1] == "absolute":
        return float(value)
    finite = [s for s in scales if math.isfinite(s)]
    return float(value) * (float(np.mean(finite)) if finite else 0.0)


def level_verdict(a: Sequence[float] | Measured, b: Sequence[float] | None = None,
                  expect: Expect = "less", confidence: float = CONFIDENCE, *,
                  margin_kind: str = "", margins: Mapping[str, float] | None = None
                  ) -> dict[str, object]:
    """The verdict at one level from the replicates' values of both sides (paired by position).

    Returns the means of both sides over the pairs that enter, the interval of A - B, the
    margin, how many replicates point the claimed way, how many values were left out and why,
    and the verdict.
    """
    m = a if isinstance(a, Measured) else Measured(a, b or [])
    kept, left_out = _entering(m)
    diffs = [x - y for x, y, _ in kept]
    interval = t_interval(diffs, confidence)
    sign, equal, most = sign_of(expect), expect == "equal", expect == "at_most"
    margin = margin_of(margin_kind, margins, [s for _, _, s in kept])
    agree = sum(1 for d in diffs if (abs(d) <= margin if equal else d <= margin if most
                                     else sign * d > margin))
    return {"A": float(np.mean([x for x, _, _ in kept])) if kept else math.nan,
            "B": float(np.mean([y for _, y, _ in kept])) if kept else math.nan,
            "difference": interval.mean, "difference low": interval.low,
            "difference high": interval.high, "margin": margin, "replicates": interval.n,
            "left out": len(left_out), "why left out": _why(left_out),
            "as claimed": f"{agree}/{interval.n}",
            "verdict": judge(interval, margin, sign, equal, most)}


def _why(notes: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return ", ".join(f"{n} {why}" for why, n in counts.items())


def overall_test(values: Mapping[int, Measured], expect: Expect, confidence: float = CONFIDENCE,
                 *, margin_kind: str = "", margins: Mapping[str, float] | None = None
                 ) -> dict[str, object]:
    """The claim's test over its levels: each replicate's mean of A - B over the levels at which
    every replicate's value enters, its interval, the verdict by `judge`, and the replicates
    that would likely settle an inconclusive one (`replicates_needed`)."""
    sign, equal, most = sign_of(expect), expect == "equal", expect == "at_most"
    complete, margins_at = [], []
    for level in sorted(values):
        m = values[level]
        kept, left_out = _entering(m)
        if kept and not left_out:
            complete.append(level)
            margins_at.append(margin_of(margin_kind, margins, [s for _, _, s in kept]))
    per_replicate: list[float] = []
    if complete:
        n = len(values[complete[0]].a)
        per_replicate = [float(np.mean([float(values[lv].a[r]) - float(values[lv].b[r])
                                        for lv in complete])) for r in range(n)]
    interval = t_interval(per_replicate, confidence)
    margin = float(np.mean(margins_at)) if margins_at else 0.0
    verdict = judge(interval, margin, sign, equal, most)
    spread = float(np.std(per_replicate, ddof=1)) if len(per_replicate) > 1 else math.nan
    needed = (replicates_needed(sign * interval.mean, spread, margin, confidence,
                                equivalence=equal, at_most=most)
              if verdict == INCONCLUSIVE and interval.n >= 2 else None)
    return {"difference": interval.mean, "difference low": interval.low,
            "difference high": interval.high, "margin": margin, "replicates": interval.n,
            "levels used": ", ".join(str(lv) for lv in complete), "verdict": verdict,
            "replicates needed": needed}


def overall_verdict(verdicts: Iterable[str]) -> Verdict:
    """The levels' verdicts counted, symmetrically: holds at more than half of the levels and
    fails at none; fails at more than half and holds at none; else inconclusive (also when no
    level was tested). A summary beside the overall test, which decides the claim."""
    v = list(verdicts)
    if not v:
        return INCONCLUSIVE
    holds, fails = v.count(HOLDS), v.count(FAILS)
    if fails == 0 and holds > len(v) / 2:
        return HOLDS
    if holds == 0 and fails > len(v) / 2:
        return FAILS
    return INCONCLUSIVE


def _measured(value: Measured | tuple) -> Measured:
    return value if isinstance(value, Measured) else Measured(*value)


def claim_table(claim: Claim, values: Mapping[int, Measured | tuple[Sequence[float], Sequence[float]]],
                confidence: float = CONFIDENCE, margins: Mapping[str, float] | None = None
                ) -> pd.DataFrame:
    """One row per level (values: {level: Measured, or (A per replicate, B per replicate)}) and
    a last row 'all' with the claim's overall test, which is its verdict."""
    measured = {lv: _measured(v) for lv, v in values.items()}
    rows = []
    for level in sorted(measured):
        rows.append({"level": level, **level_verdict(measured[level], expect=claim.expect,
                                                     confidence=confidence,
                                                     margin_kind=claim.margin, margins=margins)})
    test = overall_test(measured, claim.expect, confidence, margin_kind=claim.margin,
                        margins=margins)
    held = sum(r["verdict"] == HOLDS for r in rows)
    rows.append({"level": "all", "A": np.nan, "B": np.nan,
                 "difference": test["difference"], "difference low": test["difference low"],
                 "difference high": test["difference high"], "margin": test["margin"],
                 "replicates": test["replicates"],
                 "left out": sum(int(r["left out"]) for r in rows),
                 "why left out": _why(w for r in rows for w in _split(str(r["why left out"]))),
                 "as claimed": f"{held}/{len(rows)} levels", "verdict": test["verdict"],
                 "levels used": test["levels used"],
                 "replicates needed": test["replicates needed"],
                 "levels verdict": overall_verdict(r["verdict"] for r in rows)})
    table = pd.DataFrame(rows)
    for col, value in (("claim", claim.key), ("relation", claim.relation),
                       ("quantity", claim.quantity)):
        table.insert(0, col, value)
    return table


def _split(why: str) -> list[str]:
    """'2 not finite, 1 flagged' back into one note per value left out."""
    out = []
    for part in filter(None, (p.strip() for p in why.split(","))):
        count, _, note = part.partition(" ")
        out += [note] * int(count) if count.isdigit() else [part]
    return out


def claims_frame(tables: Iterable[tuple[Claim, pd.DataFrame]]) -> pd.DataFrame:
    """The overall verdict of several claims, one row each (the report's opening table): the
    measured effect and its interval (A - B), the margin, the level counts, what was left out,
    the replicates, those that would likely settle an inconclusive claim, and the verdict."""
    rows = []
    for claim, table in tables:
        last = table[table["level"] == "all"].iloc[0]
        per_level = table[table["level"] != "all"]
        needed = last.get("replicates needed")
        rows.append({"notebook": claim.notebook, "claim": claim.key, "source": claim.source,
                     "statement": claim.statement, "quote": claim.quote,
                     "quantity": claim.quantity,
                     "relation": claim.relation, "expect": claim.expect,
                     "margin kind": claim.margin,
                     "levels": ", ".join(str(lv) for lv in per_level["level"]),
                     "effect": last["difference"], "effect low": last["difference low"],
                     "effect high": last["difference high"], "margin": last["margin"],
                     "levels held": int((per_level["verdict"] == HOLDS).sum()),
                     "levels failed": int((per_level["verdict"] == FAILS).sum()),
                     "levels inconclusive": int((per_level["verdict"] == INCONCLUSIVE).sum()),
                     "left out": int(last["left out"]), "replicates": int(last["replicates"]),
                     "replicates needed": (int(needed) if needed is not None
                                           and not pd.isna(needed) else None),
                     "verdict": last["verdict"]})
    return pd.DataFrame(rows)


def margins_note(margins: Mapping[str, float] | None = None, kinds: Iterable[str] | None = None
                 ) -> str:
    """The margins in force, one line, for under a claims table."""
    shown = list(dict.fromkeys(kinds)) if kinds is not None else list(CLAIM_MARGINS)
    parts = []
    for kind in shown:
        if not kind:
            continue
        default, how, what = CLAIM_MARGINS[kind]
        value = (margins or {}).get(kind, default)
        parts.append(f"{kind} {value:g} ({'of the scale' if how == 'relative' else 'absolute'}: "
                     f"{what})")
    return "Margins (claims.margins): " + "; ".join(parts) + "."
