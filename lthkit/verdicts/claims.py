"""Claim verdicts: does a statement of a paper hold on this run, level by level and overall?

A claim compares two sides per level: side A (e.g. V'(100) at W_min(L)) is expected to be
*less* or *greater* than side B (V'(100) at Pr_L(min(L-1))), equal to it, at most or at least it,
or than a fixed threshold. The measured values come one per replicate (independent seeds). Each
claim's quantity has a margin m, the smallest effect that matters (`claims.margins`, per kind of
quantity: `lthkit.config.report.CLAIM_MARGINS`), so that rounding noise is not an effect. D is the
paired difference A - B taken in the claimed direction (D > 0 is as claimed), and its interval is
the 95% t-interval across replicates, widened by the error bound of values known only to a
certified accuracy (a V'(k) whose Ritz values are each within their residual of an eigenvalue).
The rule, stated once here (`RULE`) and printed under every claims table:

* per level, where the interval lies: wholly above +m **holds**; wholly below -m **reversed**
  (the opposite, beyond the margin); wholly within [-m, +m] **negligible** (no effect that
  matters; a zero-width interval at 0 is one); wholly below +m but across -m **does not hold**
  (the claimed effect is ruled out; reversed or negligible is not decided); else
  **inconclusive** (also with one replicate). A claim of no difference (A = B within the margin)
  holds within [-m, +m] and is reversed wholly outside it (two one-sided tests); a claim of "at
  most" (A <= B + m) holds wholly below +m and is reversed wholly above it; "at least" is its
  mirror;
* overall, for a statement made for every level: **mixed** when some level holds (or the pooled
  test below does) and another is reversed, negligible or does not hold; else **holds** when the
  pooled test holds (no level then contradicts it); else, where levels contradict the claim and
  none holds, the pooled test's verdict when it is reversed, negligible or does not hold, the
  levels' when every level says the same one, else **does not hold** (it fails at some level);
  else the pooled test's verdict. The pooled test: each replicate's mean D
  over the levels every replicate measured (so the replicates stay the independent unit), judged
  by the per-level rule with the mean margin of those levels. A statement made for *some* level
  ("at a specific pruning level") holds when some level holds at the Bonferroni-corrected
  confidence 1 - 0.05 / (levels);
* for an inconclusive claim, the replicates that would settle the pooled test with the stated
  power (`claims.power`, 80%), were the measured effect and spread the true ones: the noncentral
  t power of the one-sided test (two one-sided tests within the margin) at the boundary the effect
  lies beyond, checked by simulation in the tests.

Values that cannot enter (NaN, inf, a spectrum with no certified bound or fewer than k
eigenvalues) are left out of both sides together and counted per level and per claim. Paired
differences because replicate r of both sides comes from the same seed (same data order, same
initialization): pairing removes the seed's shared part of the variance. Rules never look at a
paper's published numbers (`lthkit.analysis.published` only puts those beside ours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from lthkit.config.report import CLAIM_MARGINS, CLAIM_POWER
from lthkit.verdicts.stats import CONFIDENCE, Interval, t_interval

__all__ = ["Claim", "Verdict", "level_verdict", "overall_test", "overall_verdict", "claim_table",
           "claims_frame", "RULE", "HOLDS", "REVERSED", "NEGLIGIBLE", "DOES_NOT_HOLD", "MIXED",
           "INCONCLUSIVE", "VERDICTS", "REFUTING", "judge", "replicates_needed", "settle_power",
           "margins_note", "Measured", "holds_p_value", "family_note", "holm", "FRAME_COLUMNS"]

HOLDS, REVERSED, NEGLIGIBLE = "holds", "reversed", "negligible"
DOES_NOT_HOLD, MIXED, INCONCLUSIVE = "does not hold", "mixed", "inconclusive"
VERDICTS = (HOLDS, MIXED, NEGLIGIBLE, DOES_NOT_HOLD, REVERSED, INCONCLUSIVE)
REFUTING = (REVERSED, NEGLIGIBLE, DOES_NOT_HOLD)  # a level where the claim is ruled out
Verdict = Literal["holds", "reversed", "negligible", "does not hold", "mixed", "inconclusive"]
Expect = Literal["less", "greater", "equal", "at_most", "at_least"]
Quantifier = Literal["every", "some"]

RULE = (f"D = A - B in the claimed direction, m = the margin of the claim's quantity, the "
        f"{CONFIDENCE:.0%} t-interval of D across replicates widened by any certified error "
        "bound. Per level: wholly above +m holds; wholly below -m reversed; wholly within "
        "[-m, +m] negligible; below +m but across -m does not hold (reversed or negligible "
        "undecided); else inconclusive (also with one replicate). A claim of no difference "
        "(A = B) holds within [-m, +m], is reversed wholly outside; 'at most' (A <= B + m) holds "
        "wholly below +m, is reversed wholly above ('at least' its mirror). Overall, for a "
        "statement about every level: mixed when one level holds (or the pooled test does) and "
        "another is reversed, negligible or does not hold; else holds when the pooled test "
        "(each replicate's mean D over the levels all replicates measured) holds; where levels "
        "contradict it and none holds: the pooled verdict if it contradicts too, the levels' if "
        "all say the same, else does not hold; else the pooled test's verdict. A statement about some level "
        "holds where one level holds at the Bonferroni confidence 1 - 0.05/levels. Replicates "
        "needed: those that would settle the pooled test with the stated power (noncentral t), "
        "were the measured effect and spread true. Values that cannot enter (NaN, inf, a "
        "spectrum with no certified bound or fewer than k eigenvalues) are left out and counted. "
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
    expect: Expect      # A less than B, greater, equal within the margin, at most, at least
    notebook: str = ""  # the notebook that measures it
    margin: str = ""    # the kind of quantity, a key of claims.margins ("" : margin 0)
    quote: str = ""     # the paper's sentence it tests (symbols restored in brackets)
    quantifier: Quantifier = "every"  # the statement is made for every level, or for some level
    over: str = "level"  # what the rows are (a level; a step of a sweep)

    @property
    def relation(self) -> str:
        if self.expect == "equal":
            return f"{self.a} = {self.b} within the margin"
        if self.expect == "at_most":
            return f"{self.a} <= {self.b} + the margin"
        if self.expect == "at_least":
            return f"{self.a} >= {self.b} - the margin"
        return f"{self.a} {'<' if self.expect == 'less' else '>'} {self.b}"


@dataclass(frozen=True)
class Measured:
    """One level's values across replicates: both sides, the scale a relative margin is taken
    of (NaN: |B|), why a replicate's value cannot enter ('' where it can), and the certified
    error bound on each replicate's A - B (0 where the values are exact)."""

    a: Sequence[float]
    b: Sequence[float]
    scale: Sequence[float] | None = None
    notes: Sequence[str] | None = None
    bound: Sequence[float] | None = None


def sign_of(expect: str) -> float:
    """+1 when A > B (or A = B, A <= B, A >= B) is claimed, -1 when A < B: D = sign * (A - B)."""
    return -1.0 if expect == "less" else 1.0


def _widened(interval: Interval, bound: float) -> tuple[float, float]:
    return interval.low - bound, interval.high + bound


def judge(interval: Interval, margin: float, expect: Expect = "greater",
          bound: float = 0.0) -> Verdict:
    """The per-level rule (`RULE`) on the interval of A - B (not yet in the claimed direction),
    widened by `bound` on each side."""
    if interval.n < 2 or not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return INCONCLUSIVE
    sign = sign_of(expect)
    low, high = sorted((sign * interval.low, sign * interval.high))
    low, high = low - bound, high + bound
    if expect == "at_most":
        return HOLDS if high <= margin else REVERSED if low > margin else INCONCLUSIVE
    if expect == "at_least":
        return HOLDS if low >= -margin else REVERSED if high < -margin else INCONCLUSIVE
    if expect == "equal":
        if margin > 0 and -margin <= low and high <= margin:
            return HOLDS
        return REVERSED if low > margin or high < -margin else INCONCLUSIVE
    if low > margin:
        return HOLDS
    if high < -margin:
        return REVERSED
    if low >= -margin and high <= margin:
        return NEGLIGIBLE
    return DOES_NOT_HOLD if high <= margin else INCONCLUSIVE


# --- replicates needed: the power of the rule's tests -------------------------------------------

def _t_power(shift: float, spread: float, n: int, tail: str, q: float) -> float:
    """P(the t statistic of the mean minus a boundary clears the critical value): `shift` is
    the true mean minus the boundary, `tail` 'above' (low end beyond the boundary) or 'below'."""
    df, crit = n - 1, sps.t.ppf(q, n - 1)
    nc = shift * math.sqrt(n) / spread
    return float(sps.nct.sf(crit, df, nc) if tail == "above" else sps.nct.cdf(-crit, df, nc))


def settle_power(mean: float, spread: float, margin: float, n: int, expect: Expect = "greater",
                 confidence: float = CONFIDENCE, bound: float = 0.0) -> float:
    """The chance that n replicates give a settled verdict, were `mean` (the effect in the
    claimed direction) and `spread` (the sd across replicates) the true ones: the power of the
    test for the verdict the effect lies towards (holds, reversed, negligible), one-sided at the
    rule's level; within the margin (two one-sided tests) the lower bound P1 + P2 - 1. A bound
    widens every interval, so it moves each boundary outwards by itself. NaN on a boundary."""
    q = 0.5 + confidence / 2

    def above(boundary: float) -> float:  # the widened low end beyond `boundary`
        return _t_power(mean - boundary - bound, spread, n, "above", q)

    def below(boundary: float) -> float:  # the widened high end below `boundary`
        return _t_power(mean - boundary + bound, spread, n, "below", q)

    if expect == "at_most":
        return below(margin) if mean < margin else above(margin) if mean > margin else math.nan
    if expect == "at_least":
        return above(-margin) if mean > -margin else below(-margin) if mean < -margin \
            else math.nan
    if mean > margin:
        return above(margin)
    if mean < -margin:
        return below(-margin)
    if abs(mean) < margin:  # within: negligible, or an equality holds
        return max(0.0, above(-margin) + below(margin) - 1.0)
    return math.nan


def replicates_needed(mean: float, spread: float, margin: float, expect: Expect = "greater",
                      power: float = CLAIM_POWER, confidence: float = CONFIDENCE,
                      bound: float = 0.0, limit: int = 10_000) -> int | None:
    """The smallest n >= 2 whose `settle_power` reaches `power` at measured effect `mean` (in
    the claimed direction) and spread `spread`; None where no n up to `limit` does (an effect on
    a boundary, a bound wider than the distance to it, values that are not finite)."""
    if not (math.isfinite(mean) and math.isfinite(spread) and math.isfinite(bound)):
        return None
    if spread == 0:
        spread = 1e-12 * max(abs(mean), abs(margin), 1.0)

    def enough(n: int) -> bool:
        p = settle_power(mean, spread, margin, n, expect, confidence, bound)
        return math.isfinite(p) and p >= power

    if not enough(limit):
        return None
    low, high = 2, limit  # the power grows with n: bisect for the smallest n that is enough
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid + 1, high)
    return low


# --- one level -----------------------------------------------------------------------------------

def _entering(m: Measured) -> tuple[list[tuple[float, float, float, float]], list[str]]:
    """The replicates' (A, B, scale, bound) that can enter, and why each other one cannot."""
    n = len(m.a)
    scales = list(m.scale) if m.scale is not None else [math.nan] * n
    notes = list(m.notes) if m.notes is not None else [""] * n
    bounds = list(m.bound) if m.bound is not None else [0.0] * n
    kept, left_out = [], []
    for x, y, s, note, e in zip(m.a, m.b, scales, notes, bounds):
        x, y, s, e = float(x), float(y), float(s), float(e)
        if note:
            left_out.append(note)
        elif not (math.isfinite(x) and math.isfinite(y)):
            left_out.append("not finite")
        elif not math.isfinite(e):
            left_out.append("no certified error bound")
        else:
            kept.append((x, y, abs(y) if math.isnan(s) else abs(s), abs(e)))
    return kept, left_out


def margin_of(kind: str, margins: Mapping[str, float] | None, scales: Sequence[float]) -> float:
    """The margin of a quantity kind at a level: absolute, or the value times the mean scale."""
    if not kind:
        return 0.0
    value = (margins or {}).get(kind, CLAIM_MARGINS[kind][0])
    if CLAIM_MARGINS[kind][1] == "absolute":
        return float(value)
    finite = [s for s in scales if math.isfinite(s)]
    return float(value) * (float(np.mean(finite)) if finite else 0.0)


def _agrees(d: float, margin: float, expect: Expect) -> bool:
    """Whether one replicate's difference lies where the claim says."""
    d = sign_of(expect) * d
    if expect == "equal":
        return abs(d) <= margin
    if expect == "at_most":
        return d <= margin
    if expect == "at_least":
        return d >= -margin
    return d > margin


def level_verdict(a: Sequence[float] | Measured, b: Sequence[float] | None = None,
                  expect: Expect = "less", confidence: float = CONFIDENCE, *,
                  margin_kind: str = "", margins: Mapping[str, float] | None = None
                  ) -> dict[str, object]:
    """The verdict at one level from the replicates' values of both sides (paired by position).

    Returns the means of both sides over the pairs that enter, the interval of A - B (not yet
    widened), the error bound that widens it, the margin, how many replicates point the claimed
    way, how many values were left out and why, and the verdict.
    """
    m = a if isinstance(a, Measured) else Measured(a, b or [])
    kept, left_out = _entering(m)
    diffs = [x - y for x, y, _, _ in kept]
    interval = t_interval(diffs, confidence)
    margin = margin_of(margin_kind, margins, [s for _, _, s, _ in kept])
    bound = float(np.mean([e for *_, e in kept])) if kept else 0.0
    agree = sum(_agrees(d, margin, expect) for d in diffs)
    spread = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan
    return {"A": float(np.mean([x for x, *_ in kept])) if kept else math.nan,
            "B": float(np.mean([y for _, y, *_ in kept])) if kept else math.nan,
            "difference": interval.mean, "difference low": interval.low,
            "difference high": interval.high, "bound": bound, "margin": margin,
            "replicates": interval.n, "left out": len(left_out), "why left out": _why(left_out),
            "as claimed": f"{agree}/{interval.n}",
            "p holds": holds_p_value(sign_of(expect) * interval.mean, spread, interval.n, margin,
                                     expect, bound),
            "verdict": judge(interval, margin, expect, bound)}


def _why(notes: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return ", ".join(f"{n} {why}" for why, n in counts.items())


# --- over the levels -----------------------------------------------------------------------------

def overall_test(values: Mapping[int, Measured], expect: Expect, confidence: float = CONFIDENCE,
                 *, margin_kind: str = "", margins: Mapping[str, float] | None = None,
                 power: float = CLAIM_POWER) -> dict[str, object]:
    """The pooled test over a claim's levels: each replicate's mean of A - B (and of its error
    bound) over the levels at which every replicate's value enters, its interval, the verdict by
    `judge`, the one-sided p-value of 'holds', and the replicates that would settle an
    inconclusive one with `power` (`replicates_needed`)."""
    complete, margins_at = [], []
    for level in sorted(values):
        kept, left_out = _entering(values[level])
        if kept and not left_out:
            complete.append(level)
            margins_at.append(margin_of(margin_kind, margins, [s for _, _, s, _ in kept]))
    per_replicate: list[float] = []
    bound = 0.0
    if complete:
        n = len(values[complete[0]].a)
        per_replicate = [float(np.mean([float(values[lv].a[r]) - float(values[lv].b[r])
                                        for lv in complete])) for r in range(n)]
        bound = float(np.mean([_entering(values[lv])[0][r][3] for lv in complete
                               for r in range(n)]))
    interval = t_interval(per_replicate, confidence)
    margin = float(np.mean(margins_at)) if margins_at else 0.0
    verdict = judge(interval, margin, expect, bound)
    spread = float(np.std(per_replicate, ddof=1)) if len(per_replicate) > 1 else math.nan
    effect = sign_of(expect) * interval.mean
    needed = (replicates_needed(effect, spread, margin, expect, power, confidence, bound)
              if verdict == INCONCLUSIVE and interval.n >= 2 else None)
    return {"difference": interval.mean, "difference low": interval.low,
            "difference high": interval.high, "bound": bound, "margin": margin,
            "replicates": interval.n, "levels used": ", ".join(str(lv) for lv in complete),
            "verdict": verdict, "p holds": holds_p_value(effect, spread, interval.n, margin,
                                                         expect, bound),
            "replicates needed": needed}


def holds_p_value(effect: float, spread: float, n: int, margin: float, expect: Expect,
                  bound: float = 0.0) -> float:
    """The one-sided p-value of the test whose rejection is 'holds' (the effect beyond +m; for
    an equality the larger of the two one-sided tests' p), NaN with fewer than 2 values. 'holds'
    at the rule's 95% interval is p < 0.025."""
    if n < 2 or not (math.isfinite(effect) and math.isfinite(spread)):
        return math.nan
    se = max(spread, 1e-300) / math.sqrt(n)
    t = sps.t(n - 1)
    if expect == "at_most":
        return float(t.cdf((effect + bound - margin) / se))
    if expect == "at_least":
        return float(t.sf((effect - bound + margin) / se))
    if expect == "equal":
        return float(max(t.sf((effect - bound + margin) / se),
                         t.cdf((effect + bound - margin) / se))) if margin > 0 else 1.0
    return float(t.sf((effect - bound - margin) / se))


def overall_verdict(levels: Sequence[str], pooled: str = INCONCLUSIVE,
                    quantifier: Quantifier = "every") -> Verdict:
    """The claim's verdict from its levels' verdicts and the pooled test (`RULE`)."""
    v = list(levels)
    refuting = [x for x in v if x in REFUTING]
    if quantifier == "some":
        if HOLDS in v:
            return HOLDS
        if v and len(refuting) == len(v):
            names = set(refuting)
            return names.pop() if len(names) == 1 else DOES_NOT_HOLD  # type: ignore[return-value]
        return INCONCLUSIVE
    if refuting and (HOLDS in v or pooled == HOLDS):
        return MIXED
    if pooled == HOLDS:
        return HOLDS
    if HOLDS in v:
        return INCONCLUSIVE  # levels hold, none contradicts, the pooled test does not settle
    if refuting:  # the statement fails at some level; what it is overall
        if pooled in REFUTING:
            return pooled  # type: ignore[return-value]
        names = set(refuting)
        if len(refuting) == len(v) and len(names) == 1:
            return names.pop()  # type: ignore[return-value]
        return DOES_NOT_HOLD
    return pooled  # type: ignore[return-value]


def _measured(value: Measured | tuple) -> Measured:
    return value if isinstance(value, Measured) else Measured(*value)


def claim_table(claim: Claim, values: Mapping[int, Measured | tuple[Sequence[float], Sequence[float]]],
                confidence: float = CONFIDENCE, margins: Mapping[str, float] | None = None,
                power: float = CLAIM_POWER) -> pd.DataFrame:
    """One row per level (values: {level: Measured, or (A per replicate, B per replicate)}) and
    a last row 'all' with the claim's verdict over its levels (`overall_verdict`) and the pooled
    test behind it."""
    measured = {lv: _measured(v) for lv, v in values.items()}
    level_confidence = (1 - (1 - confidence) / max(len(measured), 1)
                        if claim.quantifier == "some" else confidence)
    rows = [{"level": level, **level_verdict(measured[level], expect=claim.expect,
                                             confidence=level_confidence,
                                             margin_kind=claim.margin, margins=margins)}
            for level in sorted(measured)]
    test = overall_test(measured, claim.expect, confidence, margin_kind=claim.margin,
                        margins=margins, power=power)
    verdicts = [str(r["verdict"]) for r in rows]
    verdict = overall_verdict(verdicts, str(test["verdict"]), claim.quantifier)
    p_holds = test["p holds"]
    if claim.quantifier == "some":  # Bonferroni over the levels, at the best one
        per_level = [float(r["p holds"]) for r in rows]  # type: ignore[arg-type]
        p_holds = min([p * len(rows) for p in per_level if math.isfinite(p)] or [math.nan])
        p_holds = min(p_holds, 1.0) if math.isfinite(p_holds) else p_holds
    rows.append({"level": "all", "A": np.nan, "B": np.nan,
                 "difference": test["difference"], "difference low": test["difference low"],
                 "difference high": test["difference high"], "bound": test["bound"],
                 "margin": test["margin"], "replicates": test["replicates"],
                 "left out": sum(int(r["left out"]) for r in rows),
                 "why left out": _why(w for r in rows for w in _split(str(r["why left out"]))),
                 "as claimed": f"{verdicts.count(HOLDS)}/{len(verdicts)} levels",
                 "verdict": verdict, "pooled verdict": test["verdict"],
                 "levels used": test["levels used"], "p holds": p_holds,
                 "replicates needed": test["replicates needed"] if verdict == INCONCLUSIVE
                 else None})
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


# --- the report's opening table ------------------------------------------------------------------

# The columns of a claims frame: claims.csv and the report's opening table.
FRAME_COLUMNS = ["notebook", "claim", "source", "statement", "quote", "quantity", "relation",
                 "expect", "quantifier", "over", "margin kind", "levels", "effect", "effect low",
                 "effect high", "bound", "margin", "levels holds", "levels reversed",
                 "levels negligible", "levels does not hold", "levels inconclusive", "left out",
                 "why left out", "replicates", "replicates needed", "p holds", "verdict",
                 "holds after Holm"]


def claims_frame(tables: Iterable[tuple[Claim, pd.DataFrame]]) -> pd.DataFrame:
    """The overall verdict of several claims, one row each (the report's opening table): the
    measured effect and its interval (A - B, widened by any error bound), the margin, the level
    counts by verdict, what was left out and why, the replicates, those that would settle an
    inconclusive claim, the p-value of 'holds' and the verdict."""
    rows = []
    for claim, table in tables:
        last = table[table["level"] == "all"].iloc[0]
        per_level = table[table["level"] != "all"]
        needed = last.get("replicates needed")
        bound = float(last.get("bound", 0.0) or 0.0)
        counts = {f"levels {v}": int((per_level["verdict"] == v).sum())
                  for v in (HOLDS, REVERSED, NEGLIGIBLE, DOES_NOT_HOLD, INCONCLUSIVE)}
        rows.append({"notebook": claim.notebook, "claim": claim.key, "source": claim.source,
                     "statement": claim.statement, "quote": claim.quote,
                     "quantity": claim.quantity, "relation": claim.relation,
                     "expect": claim.expect, "quantifier": claim.quantifier, "over": claim.over,
                     "margin kind": claim.margin,
                     "levels": ", ".join(str(lv) for lv in per_level["level"]),
                     "effect": last["difference"], "effect low": last["difference low"] - bound,
                     "effect high": last["difference high"] + bound, "bound": bound,
                     "margin": last["margin"], **counts,
                     "left out": int(last["left out"]), "why left out": last["why left out"],
                     "replicates": int(last["replicates"]),
                     "replicates needed": (int(needed) if needed is not None
                                           and not pd.isna(needed) else None),
                     "p holds": last.get("p holds", math.nan), "verdict": last["verdict"]})
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS[:-1])
    frame["holds after Holm"] = holm(frame) if len(frame) else []
    return frame


def holm(frame: pd.DataFrame, alpha: float = (1 - CONFIDENCE) / 2) -> list[bool]:
    """Holm's step-down correction of the claims' 'holds' tests as one family: whether each
    claim that holds still holds when the family's chance of any false 'holds' is kept at
    `alpha` (one-sided, as the rule's 95% interval is)."""
    if "p holds" not in frame:
        return [False] * len(frame)
    p = pd.to_numeric(frame["p holds"], errors="coerce").to_numpy(dtype=float)
    tested = [i for i in np.argsort(p, kind="stable") if math.isfinite(p[i])]
    out = [False] * len(frame)
    for rank, i in enumerate(tested):
        if p[i] > alpha / (len(tested) - rank):
            break
        out[i] = frame.iloc[i]["verdict"] == HOLDS
    return out


def family_note(frame: pd.DataFrame, alpha: float = (1 - CONFIDENCE) / 2) -> str:
    """One line on the claims as a family: how many hold, how many a world where none were true
    would give by chance at most (each 'holds' is a one-sided test at `alpha`), and how many
    still hold after Holm's correction."""
    tested = (int(pd.to_numeric(frame["p holds"], errors="coerce").notna().sum())
              if len(frame) and "p holds" in frame else 0)
    held = int((frame["verdict"] == HOLDS).sum()) if len(frame) else 0
    after = int(frame["holds after Holm"].sum()) if "holds after Holm" in frame else 0
    return (f"{held} of {len(frame)} claims hold. Of the {tested} with an interval, a world in "
            f"which none were true would show about {alpha * tested:.1f} holding by chance (each "
            f"'holds' is a one-sided test at {alpha:.3g}); after Holm's correction for all "
            f"{tested}, {after} still hold.")


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
        parts.append(f"{kind} {value:g} ({'absolute' if how == 'absolute' else 'times a scale'}: "
                     f"{what})")
    return "Margins (claims.margins): " + "; ".join(parts) + "."
