"""Claim verdicts and replicate intervals, on constructed numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps

from lthkit.claims import (FAILS, HOLDS, INCONCLUSIVE, Claim, claim_table, claims_frame,
                           level_verdict, overall_verdict)
from lthkit.stats import replicate_summary, t_interval

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


def test_overall_rule():
    assert overall_verdict([HOLDS, HOLDS, INCONCLUSIVE]) == HOLDS
    assert overall_verdict([HOLDS, FAILS, HOLDS]) == INCONCLUSIVE  # fails somewhere
    assert overall_verdict([FAILS, FAILS, HOLDS]) == FAILS
    assert overall_verdict([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE  # not more than half
    assert overall_verdict([]) == INCONCLUSIVE


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
