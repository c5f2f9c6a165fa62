"""Claim verdicts and replicate intervals, on constructed numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps

from lthkit.verdicts.claims import (FAILS, HOLDS, INCONCLUSIVE, Claim, Measured, claim_table,
                                    claims_frame, level_verdict, margins_note, overall_test,
                                    overall_verdict, replicates_needed)
from lthkit.verdicts.stats import replicate_summary, t_interval

CLAIM = Claim("R1-table1", "Saleem et al., Result 1 (Table I)", "W_min(L) has the larger volume",
              "V'(100), level L space", "W_min(L)", "Pr_L(min(L-1))", "less", "04_hessian_volume")


def test_t_interval_matches_the_textbook_formula():
    x = [1.0, 2.0, 4.0]
    got = t_interval(x)
    half = sps.t.ppf(0.975, 2) * pd.Series(x).std() / math.sqrt(3)
    assert got.mean == pytest.approx(7 / 3)
    assert (got.low, got.high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert got.n == 3


def test_one_value_has_no_interval_and_excludes_nothing():
    got = t_interval([5.0, float("nan")])
    assert got.n == 1 and math.isnan(got.low) and not got.excludes(0.0)


def test_clear_difference_in_the_claimed_direction_holds():
    row = level_verdict([400.0, 401.0, 402.0], [410.0, 412.0, 411.0], "less")
    assert row["verdict"] == HOLDS and row["as claimed"] == "3/3"
    assert row["difference high"] < 0


def test_clear_difference_the_other_way_does_not_hold():
    row = level_verdict([420.0, 421.0, 419.0], [410.0, 412.0, 411.0], "less")
    assert row["verdict"] == FAILS and row["as claimed"] == "0/3"


def test_overlapping_or_single_replicates_are_inconclusive():
    assert level_verdict([400.0, 420.0], [410.0, 405.0], "less")["verdict"] == INCONCLUSIVE
    one = level_verdict([400.0], [500.0], "less")
    assert one["verdict"] == INCONCLUSIVE and one["as claimed"] == "1/1"


def test_pairing_removes_the_seed_effect():
    # Sides differ by exactly 1 in every seed, while seeds differ by 100: paired, it holds.
    a = [100.0, 200.0, 300.0]
    b = [101.0, 201.1, 300.9]
    assert level_verdict(a, b, "less")["verdict"] == HOLDS
    assert t_interval(a).high > t_interval(b).low  # the unpaired intervals overlap


def test_greater_claims_and_thresholds():
    assert level_verdict([0.3, 0.31, 0.29], [0.0, 0.0, 0.0], "greater")["verdict"] == HOLDS


def test_the_levels_count_is_symmetric():
    """Issue 26 item 3: holds at more than half and fails at none, fails at more than half and
    holds at none; anything mixed is inconclusive, whichever way it leans."""
    assert overall_verdict([HOLDS, HOLDS, INCONCLUSIVE]) == HOLDS
    assert overall_verdict([HOLDS, FAILS, HOLDS]) == INCONCLUSIVE  # fails somewhere
    assert overall_verdict([FAILS, FAILS, INCONCLUSIVE]) == FAILS
    assert overall_verdict([FAILS, FAILS, HOLDS]) == INCONCLUSIVE  # holds somewhere
    assert overall_verdict([HOLDS] * 6 + [FAILS]) == INCONCLUSIVE
    assert overall_verdict([HOLDS] * 4 + [FAILS] * 6) == INCONCLUSIVE
    assert overall_verdict([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE  # not more than half
    assert overall_verdict([]) == INCONCLUSIVE


# --- the margin rule (issue 23 item 1), on constructed values ---------------------------------

BARRIER = Claim("R4-fig12", "Saleem et al., Result 4", "a barrier", "barrier", "barrier", "0",
                "greater", "06_barriers", margin="barrier")
VOLUME = Claim("R1-table1", "Saleem et al.", "larger volume", "V'", "W_min(L)", "Pr", "less",
               "04_hessian_volume", margin="volume")


def _barrier(values, scale=1.0):
    return Measured(values, [0.0] * len(values), [scale] * len(values))


def test_nine_measurements_of_no_barrier_do_not_hold():
    """Exactly 0 at every level of every replicate: a zero-width interval at 0 is no effect."""
    table = claim_table(BARRIER, {lv: _barrier([0.0, 0.0, 0.0]) for lv in (1, 2, 3)})
    assert list(table["verdict"]) == [FAILS] * 4
    assert pd.isna(table.iloc[-1]["replicates needed"])  # settled: none needed


def test_rounding_noise_above_zero_is_not_an_effect():
    # barriers of 1e-6 on a loss of 2: far below the 1% margin (0.02)
    row = level_verdict(_barrier([1e-6, 2e-6, 1.5e-6], scale=2.0), expect="greater",
                        margin_kind="barrier")
    assert row["margin"] == pytest.approx(0.02) and row["verdict"] == FAILS


def test_an_interval_beyond_the_margin_holds_and_one_across_it_is_inconclusive():
    assert level_verdict(_barrier([0.5, 0.6, 0.55]), expect="greater",
                         margin_kind="barrier")["verdict"] == HOLDS
    # straddles +m (0.01): some effect, not clearly one that matters
    assert level_verdict(_barrier([0.005, 0.02, 0.012]), expect="greater",
                         margin_kind="barrier")["verdict"] == INCONCLUSIVE


def test_zero_variance_differences_on_each_side():
    # identical nonzero differences: a zero-width interval, judged where it lies
    same = Measured([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert level_verdict(same, expect="less", margin_kind="volume")["verdict"] == HOLDS
    assert level_verdict(same, expect="greater", margin_kind="volume")["verdict"] == FAILS
    small = Measured([1.0, 1.0, 1.0], [1.2, 1.2, 1.2])  # 0.2 < the volume margin 0.5
    assert level_verdict(small, expect="less", margin_kind="volume")["verdict"] == FAILS


def test_the_margins_are_the_parameters():
    values = Measured([1.0, 1.1, 0.9], [1.3, 1.4, 1.2])  # -0.3 each: within 0.5, beyond 0.1
    assert level_verdict(values, expect="less", margin_kind="volume")["verdict"] == FAILS
    assert level_verdict(values, expect="less", margin_kind="volume",
                         margins={"volume": 0.1})["verdict"] == HOLDS
    assert "volume 0.5 (absolute" in margins_note(None, ["volume"])
    assert "barrier 0.03" in margins_note({"barrier": 0.03}, ["barrier"])


# --- values that cannot enter (issue 23 item 3, issue 26 items 1-2) ----------------------------

def test_an_infinite_value_gives_no_verdict_and_is_counted():
    row = level_verdict([1.0, 2.0, math.inf], [0.0, 0.0, 0.0], "greater")
    assert row["verdict"] == INCONCLUSIVE  # two finite pairs: [1, 2] has a wide t(1) interval
    assert row["left out"] == 1 and row["why left out"] == "1 not finite"
    assert row["A"] == pytest.approx(1.5) and row["B"] == 0.0  # the same pairs as the difference
    assert not t_interval([1.0, math.inf]).excludes(0.0)
    bad = level_verdict([math.inf, math.inf], [math.inf, math.inf], "greater")
    assert bad["replicates"] == 0 and bad["left out"] == 2 and bad["verdict"] == INCONCLUSIVE


def test_flagged_and_unmeasured_values_are_left_out_and_counted_per_claim():
    values = {1: Measured([1.0, 1.1, 0.9], [3.0, 3.1, 2.9], notes=["", "flagged spectrum", ""]),
              2: Measured([1.0, 1.2, 0.8], [3.0, 3.2, 2.8])}
    table = claim_table(VOLUME, values)
    assert list(table["left out"]) == [1, 0, 1]
    assert table.iloc[-1]["why left out"] == "1 flagged spectrum"
    assert table.iloc[-1]["levels used"] == "2"  # the overall test uses complete levels only
    frame = claims_frame([(VOLUME, table)])
    assert frame.loc[0, "left out"] == 1


# --- the overall test and the replicates needed (issue 23 item 2) ------------------------------

def test_agreeing_replicates_settle_the_claim_overall_where_levels_cannot():
    """Random re-initialization as measured: 3/3 and 3/3 as claimed, intervals crossing 0 per
    level (t(2) = 4.3), the replicates' mean over the levels settles it."""
    values = {1: Measured([-1.0, -9.0, -3.0], [0.0] * 3), 2: Measured([-14.0, -6.0, -14.2], [0.0] * 3)}
    claim = Claim("R2-fig10", "s", "smaller volume", "V'", "W_min(L)", "W_RI(L)", "less", "08",
                  margin="volume")
    table = claim_table(claim, values)
    assert list(table["verdict"])[:2] == [INCONCLUSIVE, INCONCLUSIVE]
    overall = overall_test(values, "less", margin_kind="volume")
    per_replicate = [-7.5, -7.5, -8.6]
    assert overall["difference"] == pytest.approx(sum(per_replicate) / 3)
    assert overall["verdict"] == HOLDS and table.iloc[-1]["verdict"] == HOLDS


def test_replicates_needed_follows_the_stated_formula():
    d, s, m = 1.0, 1.0, 0.5
    n = replicates_needed(d, s, m)
    assert sps.t.ppf(0.975, n - 1) * s / math.sqrt(n) <= d - m
    assert sps.t.ppf(0.975, n - 2) * s / math.sqrt(n - 1) > d - m
    assert replicates_needed(0.5, 1.0, 0.5) is None  # on the boundary: never settles
    assert replicates_needed(-2.0, 1.0, 0.5) < replicates_needed(0.9, 1.0, 0.5)
    values = {1: Measured([0.1, 1.9, 1.0], [0.0] * 3)}  # d = 1, s = 0.9: inconclusive at 3
    table = claim_table(Claim("k", "s", "x", "q", "a", "b", "greater", "nb", margin="volume"),
                        values)
    last = table.iloc[-1]
    assert last["verdict"] == INCONCLUSIVE and last["replicates needed"] == replicates_needed(
        1.0, float(pd.Series([0.1, 1.9, 1.0]).std()), 0.5)
    assert last["replicates needed"] > 3


def test_claim_table_and_report_frame():
    values = {1: ([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]), 5: ([1.0, 1.2, 0.8], [2.0, 2.2, 1.8])}
    table = claim_table(CLAIM, values)
    assert list(table["level"]) == [1, 5, "all"]
    assert list(table["verdict"]) == [HOLDS, HOLDS, HOLDS]
    frame = claims_frame([(CLAIM, table)])
    assert frame.loc[0, "verdict"] == HOLDS and frame.loc[0, "levels"] == "1, 5"
    assert frame.loc[0, "relation"] == "W_min(L) < Pr_L(min(L-1))"


def test_replicate_summary_means_and_bounds():
    f1 = pd.DataFrame({"v": [1.0, 10.0], "name": ["a", "b"]}, index=[1, 2])
    f2 = pd.DataFrame({"v": [3.0, 14.0], "name": ["a", "b"]}, index=[1, 2])
    out = replicate_summary([f1, f2])
    assert list(out["v"]) == [2.0, 12.0]
    assert out.loc[1, "v low"] < 2.0 < out.loc[1, "v high"]
    assert list(out["name"]) == ["a", "b"]
    assert replicate_summary([f1]) is f1


# --- claims of no difference (issue 26 items 7-8: a small barrier, two equal accuracies) ----------

def test_an_equivalence_holds_only_inside_the_margin():
    m = {"accuracy": 0.01}
    inside = level_verdict([0.951, 0.949, 0.950], [0.950, 0.950, 0.951], "equal",
                           margin_kind="accuracy", margins=m)
    assert inside["verdict"] == HOLDS and inside["as claimed"] == "3/3"
    apart = level_verdict([0.90, 0.91, 0.905], [0.95, 0.95, 0.951], "equal",
                          margin_kind="accuracy", margins=m)
    assert apart["verdict"] == FAILS, "wholly beyond -m: the two differ"
    wide = level_verdict([0.95, 0.90, 0.99], [0.95, 0.95, 0.95], "equal",
                         margin_kind="accuracy", margins=m)
    assert wide["verdict"] == INCONCLUSIVE
    same = level_verdict([0.95, 0.95], [0.95, 0.95], "equal", margin_kind="accuracy", margins=m)
    assert same["verdict"] == HOLDS, "a zero-width interval at 0 is inside any positive margin"
    assert level_verdict([0.95, 0.95], [0.95, 0.95], "equal")["verdict"] == INCONCLUSIVE, \
        "with no margin nothing can be shown equal"
    assert level_verdict([0.95], [0.95], "equal", margin_kind="accuracy",
                         margins=m)["verdict"] == INCONCLUSIVE


def test_replicates_needed_for_an_equivalence():
    n = replicates_needed(0.002, 0.004, 0.01, equivalence=True)  # g = 0.01 - 0.002
    assert n is not None and sps.t.ppf(0.975, n - 1) * 0.004 / math.sqrt(n) <= 0.008
    assert sps.t.ppf(0.975, n - 2) * 0.004 / math.sqrt(n - 1) > 0.008, "the smallest such n"
    assert replicates_needed(0.01, 0.004, 0.01, equivalence=True) is None, "on the boundary"


def test_a_claim_of_equality_reads_as_one():
    from lthkit.verdicts.claims import Claim

    c = Claim("k", "s", "small barrier", "barrier", "barrier", "0", "equal", margin="barrier")
    assert c.relation == "barrier = 0 within the margin"
    table = claim_table(c, {1: Measured([0.0, 0.0, 0.001], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])})
    assert list(table["verdict"]) == [HOLDS, HOLDS]


def test_at_most_holds_below_the_margin_and_fails_above():
    """A <= B up to the margin (Fig 13: the IMP solutions joined at no more than c + m)."""
    m = {"loss": 0.01}  # relative to B = c
    joined = level_verdict([1.0, 1.001, 1.002], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert joined["verdict"] == HOLDS and joined["margin"] == pytest.approx(0.01)
    walled = level_verdict([1.5, 1.6, 1.55], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert walled["verdict"] == FAILS
    unsure = level_verdict([1.0, 1.05, 0.99], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert unsure["verdict"] == INCONCLUSIVE
    assert replicates_needed(0.002, 0.004, 0.01, at_most=True) == replicates_needed(
        0.002, 0.004, 0.01, equivalence=True), "the same distance to the one boundary, +m"
