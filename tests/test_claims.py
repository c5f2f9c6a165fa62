"""Claim verdicts and replicate intervals, on constructed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from lthkit.analysis.hessian.lanczos import volume_bound
from lthkit.verdicts.claims import (DOES_NOT_HOLD, FRAME_COLUMNS, HOLDS, INCONCLUSIVE, MIXED,
                                    NEGLIGIBLE, REVERSED, Claim, Measured, claim_table,
                                    claims_frame, family_note, holm, judge, level_verdict,
                                    margins_note, overall_test, overall_verdict,
                                    replicates_needed, settle_power)
from lthkit.verdicts.stats import replicate_summary, t_interval

CLAIM = Claim("R1-table1", "Saleem et al., Result 1 (Table I)", "W_min(L) has the larger volume",
              "V'(100), level L space", "W_min(L)", "Pr_L(min(L-1))", "less", "04_hessian_volume")
GREATER = Claim("k", "s", "x", "q", "a", "b", "greater", "nb", margin="accuracy")


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


def test_clear_difference_the_other_way_is_reversed():
    row = level_verdict([420.0, 421.0, 419.0], [410.0, 412.0, 411.0], "less")
    assert row["verdict"] == REVERSED and row["as claimed"] == "0/3"


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


# --- the verdict names (issue 31 item 2) ------------------------------------------------------

@pytest.mark.parametrize("diffs, verdict", [
    ([0.50, 0.52, 0.48], HOLDS),             # wholly above +m
    ([-0.50, -0.52, -0.48], REVERSED),       # wholly below -m: the opposite, beyond the margin
    ([0.002, 0.004, 0.003], NEGLIGIBLE),     # significantly positive, but inside the margin
    ([0.0, 0.0, 0.0], NEGLIGIBLE),           # a zero-width interval at 0
    ([-0.008, -0.012, -0.010], DOES_NOT_HOLD),  # below +m, across -m: ruled out, kind undecided
    ([0.005, 0.02, 0.012], INCONCLUSIVE),    # across +m
    ([-0.5, 0.5, 0.0], INCONCLUSIVE),        # across everything
])
def test_each_level_says_what_happened(diffs, verdict):
    row = level_verdict(diffs, [0.0] * 3, "greater", margin_kind="accuracy")
    assert row["margin"] == 0.01 and row["verdict"] == verdict


def test_the_old_rule_called_a_small_real_effect_and_a_reversal_the_same():
    """A significantly positive effect inside the margin and a reversed one are different
    findings (the old rule said 'does not hold' for both)."""
    small = level_verdict([0.002, 0.004, 0.003], [0.0] * 3, "greater", margin_kind="accuracy")
    flipped = level_verdict([-0.5, -0.52, -0.48], [0.0] * 3, "greater", margin_kind="accuracy")
    assert (small["verdict"], flipped["verdict"]) == (NEGLIGIBLE, REVERSED)


# --- a statement made for every level (issue 31 item 1) ------------------------------------------

def test_a_claim_reversed_at_a_level_does_not_hold_overall():
    """The issue's table: +10 at levels 1-3, -25 at level 4. The mean over levels is positive
    beyond the margin (the old rule said 'holds'); level 4 is clearly reversed: mixed."""
    same = ([10, 10.2, 9.8], [0] * 3)
    values = {1: same, 2: same, 3: same, 4: ([-25, -25.2, -24.8], [0] * 3)}
    table = claim_table(Claim("k", "s", "x", "q", "a", "b", "greater", margin="accuracy"), values,
                        margins={"accuracy": 0.5})
    assert list(table["verdict"]) == [HOLDS, HOLDS, HOLDS, REVERSED, MIXED]
    assert table.iloc[-1]["pooled verdict"] != MIXED  # the pooled test alone cannot see it


def test_large_effects_of_opposite_sign_are_not_no_effect():
    """+5, +5, -5, -5 against a margin of 0.5: the pooled mean is exactly 0 (the old rule said
    'does not hold: no effect that matters'); every level's effect is ten margins: mixed."""
    values = {1: ([5, 5, 5], [0] * 3), 2: ([5, 5, 5], [0] * 3),
              3: ([-5, -5, -5], [0] * 3), 4: ([-5, -5, -5], [0] * 3)}
    table = claim_table(GREATER, values, margins={"accuracy": 0.5})
    assert table.iloc[-1]["pooled verdict"] == NEGLIGIBLE
    assert table.iloc[-1]["verdict"] == MIXED


def test_overall_verdict_from_levels_and_the_pooled_test():
    assert overall_verdict([HOLDS, HOLDS, INCONCLUSIVE], HOLDS) == HOLDS
    assert overall_verdict([INCONCLUSIVE] * 3, HOLDS) == HOLDS  # pooling gives the power
    assert overall_verdict([HOLDS, NEGLIGIBLE], HOLDS) == MIXED
    assert overall_verdict([INCONCLUSIVE, REVERSED], HOLDS) == MIXED
    assert overall_verdict([HOLDS, HOLDS], INCONCLUSIVE) == INCONCLUSIVE
    assert overall_verdict([REVERSED, INCONCLUSIVE], INCONCLUSIVE) == DOES_NOT_HOLD, \
        "reversed at one level, undecided elsewhere: the statement for every level fails"
    assert overall_verdict([REVERSED, REVERSED], INCONCLUSIVE) == REVERSED
    assert overall_verdict([REVERSED, NEGLIGIBLE], INCONCLUSIVE) == DOES_NOT_HOLD
    assert overall_verdict([NEGLIGIBLE, INCONCLUSIVE], REVERSED) == REVERSED
    assert overall_verdict([INCONCLUSIVE], INCONCLUSIVE) == INCONCLUSIVE
    assert overall_verdict([], INCONCLUSIVE) == INCONCLUSIVE


def test_a_statement_about_some_level_holds_where_one_level_does():
    """IE643's 'at a specific pruning level': one level clearly above, at the Bonferroni
    confidence over the levels; the others do not contradict it."""
    c = Claim("k", "s", "x", "q", "a", "b", "greater", margin="accuracy", quantifier="some")
    values = {1: ([0.0, 0.01, -0.01], [0] * 3), 2: ([0.05, 0.051, 0.049], [0] * 3),
              3: ([-0.02, 0.0, -0.01], [0] * 3)}
    table = claim_table(c, values)
    assert table.iloc[-1]["verdict"] == HOLDS
    assert table.iloc[1]["difference high"] - table.iloc[1]["difference low"] > 2 * (
        t_interval([0.05, 0.051, 0.049]).high - 0.05), "the level's interval is Bonferroni-wide"
    none = claim_table(c, {1: ([-0.05, -0.051, -0.049], [0] * 3),
                           2: ([-0.06, -0.061, -0.059], [0] * 3)})
    assert none.iloc[-1]["verdict"] == REVERSED


# --- the margin rule (issue 23 item 1), on constructed values ---------------------------------

BARRIER = Claim("R4-fig12", "Saleem et al., Result 4", "a barrier", "barrier", "barrier", "0",
                "greater", "06_barriers", margin="barrier")
VOLUME = Claim("R1-table1", "Saleem et al.", "larger volume", "V'", "W_min(L)", "Pr", "less",
               "04_hessian_volume", margin="volume")


def _barrier(values, scale=1.0):
    return Measured(values, [0.0] * len(values), [scale] * len(values))


def _volume(a, b, k=100, **kw):
    return Measured(a, b, [k] * len(a), **kw)


def test_nine_measurements_of_no_barrier_are_negligible():
    """Exactly 0 at every level of every replicate: a zero-width interval at 0 is no effect."""
    table = claim_table(BARRIER, {lv: _barrier([0.0, 0.0, 0.0]) for lv in (1, 2, 3)})
    assert list(table["verdict"]) == [NEGLIGIBLE] * 4
    assert pd.isna(table.iloc[-1]["replicates needed"])  # settled: none needed


def test_rounding_noise_above_zero_is_not_an_effect():
    # barriers of 1e-6 against a chance-level loss of ln 10: far below the 1% margin
    row = level_verdict(_barrier([1e-6, 2e-6, 1.5e-6], scale=math.log(10)), expect="greater",
                        margin_kind="barrier")
    assert row["margin"] == pytest.approx(0.01 * math.log(10)) and row["verdict"] == NEGLIGIBLE


def test_an_interval_beyond_the_margin_holds_and_one_across_it_is_inconclusive():
    assert level_verdict(_barrier([0.5, 0.6, 0.55]), expect="greater",
                         margin_kind="barrier")["verdict"] == HOLDS
    assert level_verdict(_barrier([0.005, 0.02, 0.012]), expect="greater",
                         margin_kind="barrier")["verdict"] == INCONCLUSIVE


def test_zero_variance_differences_on_each_side():
    same = _volume([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert level_verdict(same, expect="less", margin_kind="volume")["verdict"] == HOLDS
    assert level_verdict(same, expect="greater", margin_kind="volume")["verdict"] == REVERSED
    small = _volume([1.0, 1.0, 1.0], [1.2, 1.2, 1.2])  # 0.2 < the volume margin 0.5 at k = 100
    assert level_verdict(small, expect="less", margin_kind="volume")["verdict"] == NEGLIGIBLE


def test_the_margins_are_the_parameters():
    values = _volume([1.0, 1.1, 0.9], [1.3, 1.4, 1.2])  # -0.3 each: within 0.5, beyond 0.1
    assert level_verdict(values, expect="less", margin_kind="volume")["verdict"] == NEGLIGIBLE
    assert level_verdict(values, expect="less", margin_kind="volume",
                         margins={"volume": 0.001})["verdict"] == HOLDS
    assert "volume 0.005 (times a scale" in margins_note(None, ["volume"])
    assert "barrier 0.03" in margins_note({"barrier": 0.03}, ["barrier"])


# --- margins that keep their meaning (issue 31 item 5) -----------------------------------------

def test_the_volume_margin_is_per_eigenvalue_times_k():
    """The same per-eigenvalue effect (0.02 per log eigenvalue) at Fig 22's k = 10 and at
    k = 100: the old absolute 0.5 called the k = 10 effect negligible and the k = 100 one real."""
    per_eigenvalue = 0.02
    for k in (10, 100):
        d = per_eigenvalue * k
        row = level_verdict(_volume([0.0] * 3, [d, d * 1.01, d * 0.99], k=k), expect="less",
                            margin_kind="volume")
        assert row["margin"] == pytest.approx(0.005 * k)
        assert row["verdict"] == HOLDS, k


def test_the_barrier_margin_does_not_vanish_as_training_converges():
    """A bump of 2e-4 on a converged line (end losses 0.01): 1% of the end loss (the old scale)
    called it an effect that matters; against the chance-level loss it is negligible."""
    bump = [2e-4, 2.2e-4, 1.8e-4]
    converged = level_verdict(Measured(bump, [0.0] * 3, [0.01] * 3), expect="greater",
                              margin_kind="barrier")
    assert converged["verdict"] == HOLDS, "the old scale (mean end loss) calls it a barrier"
    chance = level_verdict(Measured(bump, [0.0] * 3, [math.log(10)] * 3), expect="greater",
                           margin_kind="barrier")
    assert chance["verdict"] == NEGLIGIBLE


def test_a_per_eigenvalue_volume_margin_refuses_a_whole_v_margin():
    from lthkit.config.report import ClaimsSection

    with pytest.raises(ValueError, match="per eigenvalue"):
        ClaimsSection(margins={"volume": 0.5})
    assert ClaimsSection(margins={"volume": 0.01}).margins["volume"] == 0.01


# --- values short of their tolerance enter with their bound (issue 31 item 4) ---------------------

def test_a_ritz_value_enters_with_the_bound_its_residual_certifies():
    theta = torch.tensor([10.0, 4.0, 1.0], dtype=torch.float64)
    residuals = torch.tensor([0.1, 0.2, 0.05], dtype=torch.float64)
    bound = volume_bound(theta, residuals, k=3, threshold=0.0)
    assert bound == pytest.approx(math.log(10 / 9.9) + math.log(4 / 3.8) + math.log(1 / 0.95))
    for i, t in enumerate(theta.tolist()):  # every eigenvalue within r of θ: the sum within
        lam = theta.clone()
        lam[i] = t + residuals[i] * (1 if i % 2 else -1)
        assert abs(float(torch.log(lam).sum() - torch.log(theta).sum())) <= bound
    assert volume_bound(theta, torch.tensor([0.1, 0.2, 1.5]), k=3, threshold=0.0) == math.inf
    assert math.isnan(volume_bound(theta, None, k=3))


def test_a_bounded_value_widens_the_interval_instead_of_leaving_it_out():
    """Spectra 1-5% short of tol: before, left out (every Hessian claim inconclusive whatever
    the effect); now in, the interval widened by the mean bound, the bound shown."""
    a, b = [400.0, 401.0, 402.0], [420.0, 421.5, 419.0]
    exact = level_verdict(_volume(a, b), expect="less", margin_kind="volume")
    bounded = level_verdict(_volume(a, b, bound=[2.0, 3.0, 4.0]), expect="less",
                            margin_kind="volume")
    assert bounded["left out"] == 0 and bounded["bound"] == pytest.approx(3.0)
    assert bounded["verdict"] == HOLDS
    wide = level_verdict(_volume(a, b, bound=[15.0] * 3), expect="less", margin_kind="volume")
    assert wide["verdict"] == INCONCLUSIVE, "a bound wider than the distance to +m"
    assert exact["verdict"] == HOLDS
    none = level_verdict(_volume(a, b, bound=[2.0, math.inf, 2.0]), expect="less",
                         margin_kind="volume")
    assert none["left out"] == 1 and "no certified error bound" in none["why left out"]


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
    values = {1: _volume([1.0, 1.1, 0.9], [3.0, 3.1, 2.9], notes=["", "flagged spectrum", ""]),
              2: _volume([1.0, 1.2, 0.8], [3.0, 3.2, 2.8])}
    table = claim_table(VOLUME, values)
    assert list(table["left out"]) == [1, 0, 1]
    assert table.iloc[-1]["why left out"] == "1 flagged spectrum"
    assert table.iloc[-1]["levels used"] == "2"  # the pooled test uses complete levels only
    frame = claims_frame([(VOLUME, table)])
    assert frame.loc[0, "left out"] == 1 and frame.loc[0, "why left out"] == "1 flagged spectrum"


# --- the pooled test and the replicates needed (issue 31 item 3) -------------------------------

def test_agreeing_replicates_settle_the_claim_overall_where_levels_cannot():
    """Random re-initialization as measured: intervals crossing 0 per level (t(2) = 4.3), the
    replicates' mean over the levels settles it; no level contradicts it."""
    values = {1: _volume([-1.0, -9.0, -3.0], [0.0] * 3), 2: _volume([-14.0, -6.0, -14.2], [0.0] * 3)}
    claim = Claim("R2-fig10", "s", "smaller volume", "V'", "W_min(L)", "W_RI(L)", "less", "08",
                  margin="volume")
    table = claim_table(claim, values)
    assert list(table["verdict"])[:2] == [INCONCLUSIVE, INCONCLUSIVE]
    overall = overall_test(values, "less", margin_kind="volume")
    per_replicate = [-7.5, -7.5, -8.6]
    assert overall["difference"] == pytest.approx(sum(per_replicate) / 3)
    assert overall["verdict"] == HOLDS and table.iloc[-1]["verdict"] == HOLDS


def _settled_fraction(n: int, mean: float, spread: float, margin: float, expect: str,
                      sims: int = 4000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    draws = rng.normal(mean, spread, size=(sims, n))
    settled = 0
    for row in draws:
        verdict = judge(t_interval(row), margin, expect)  # type: ignore[arg-type]
        settled += verdict != INCONCLUSIVE
    return settled / sims


@pytest.mark.parametrize("mean, spread, margin, expect", [
    (1.0, 1.0, 0.5, "greater"),   # the example (the old formula said 18: ~50%)
    (0.9, 0.4, 0.5, "greater"),
    (-1.5, 1.0, 0.5, "greater"),  # towards reversed
    (0.1, 0.2, 0.5, "greater"),   # towards negligible (two one-sided tests)
    (0.002, 0.004, 0.01, "equal"),
    (0.002, 0.004, 0.01, "at_most"),
])
def test_replicates_needed_settle_the_claim_with_the_stated_power(mean, spread, margin, expect):
    n = replicates_needed(mean, spread, margin, expect)
    assert n is not None
    assert _settled_fraction(n, mean, spread, margin, expect) >= 0.75
    if n > 3:
        assert settle_power(mean, spread, margin, n - 1, expect) < 0.8, "the smallest such n"


def test_the_old_replicates_needed_settled_half_the_time():
    old = 18  # the smallest n whose t half-width reached the gap: replicates_needed before
    assert _settled_fraction(old, 1.0, 1.0, 0.5, "greater") < 0.6
    assert replicates_needed(1.0, 1.0, 0.5) > old
    assert replicates_needed(0.5, 1.0, 0.5) is None  # on the boundary: never settles
    assert replicates_needed(1.0, 1.0, 0.5, power=0.9) > replicates_needed(1.0, 1.0, 0.5)


def test_the_table_gives_the_replicates_needed_for_an_inconclusive_claim():
    values = {1: Measured([0.1, 1.9, 1.0], [0.0] * 3)}  # d = 1, s = 0.9: inconclusive at 3
    table = claim_table(Claim("k", "s", "x", "q", "a", "b", "greater", "nb", margin="accuracy"),
                        values, margins={"accuracy": 0.5})
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
    assert list(frame.columns) == FRAME_COLUMNS
    assert frame.loc[0, "verdict"] == HOLDS and frame.loc[0, "levels"] == "1, 5"
    assert frame.loc[0, "levels holds"] == 2 and frame.loc[0, "levels reversed"] == 0
    assert frame.loc[0, "relation"] == "W_min(L) < Pr_L(min(L-1))"


def test_replicate_summary_means_and_bounds():
    f1 = pd.DataFrame({"v": [1.0, 10.0], "name": ["a", "b"]}, index=[1, 2])
    f2 = pd.DataFrame({"v": [3.0, 14.0], "name": ["a", "b"]}, index=[1, 2])
    out = replicate_summary([f1, f2])
    assert list(out["v"]) == [2.0, 12.0]
    assert out.loc[1, "v low"] < 2.0 < out.loc[1, "v high"]
    assert list(out["name"]) == ["a", "b"]
    assert replicate_summary([f1]) is f1


# --- claims of no difference, at most, at least ------------------------------------------------

def test_an_equivalence_holds_only_inside_the_margin():
    m = {"accuracy": 0.01}
    inside = level_verdict([0.951, 0.949, 0.950], [0.950, 0.950, 0.951], "equal",
                           margin_kind="accuracy", margins=m)
    assert inside["verdict"] == HOLDS and inside["as claimed"] == "3/3"
    apart = level_verdict([0.90, 0.91, 0.905], [0.95, 0.95, 0.951], "equal",
                          margin_kind="accuracy", margins=m)
    assert apart["verdict"] == REVERSED, "wholly beyond -m: the two differ"
    wide = level_verdict([0.95, 0.90, 0.99], [0.95, 0.95, 0.95], "equal",
                         margin_kind="accuracy", margins=m)
    assert wide["verdict"] == INCONCLUSIVE
    same = level_verdict([0.95, 0.95], [0.95, 0.95], "equal", margin_kind="accuracy", margins=m)
    assert same["verdict"] == HOLDS, "a zero-width interval at 0 is inside any positive margin"
    assert level_verdict([0.95, 0.95], [0.95, 0.95], "equal")["verdict"] == INCONCLUSIVE, \
        "with no margin nothing can be shown equal"


def test_a_claim_of_equality_reads_as_one():
    c = Claim("k", "s", "small barrier", "barrier", "barrier", "0", "equal", margin="barrier")
    assert c.relation == "barrier = 0 within the margin"
    table = claim_table(c, {1: Measured([0.0, 0.0, 0.001], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])})
    assert list(table["verdict"]) == [HOLDS, HOLDS]


def test_at_most_holds_below_the_margin_and_is_reversed_above():
    """A <= B up to the margin (Fig 13: the IMP solutions joined at no more than c + m)."""
    m = {"loss": 0.01}  # relative to B = c
    joined = level_verdict([1.0, 1.001, 1.002], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert joined["verdict"] == HOLDS and joined["margin"] == pytest.approx(0.01)
    walled = level_verdict([1.5, 1.6, 1.55], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert walled["verdict"] == REVERSED
    unsure = level_verdict([1.0, 1.05, 0.99], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                           margins=m)
    assert unsure["verdict"] == INCONCLUSIVE
    below = level_verdict([0.2, 0.1, 0.3], [1.0, 1.0, 1.0], "at_most", margin_kind="loss",
                          margins=m)
    assert below["verdict"] == HOLDS, "far below c is inside the sublevel set, not 'equal'"


def test_at_least_is_the_mirror_of_at_most():
    c = Claim("k", "s", "twice", "acc", "ticket", "2 x random", "at_least", margin="accuracy")
    assert c.relation == "ticket >= 2 x random - the margin"
    assert level_verdict([0.8, 0.81, 0.79], [0.6] * 3, "at_least",
                         margin_kind="accuracy")["verdict"] == HOLDS
    assert level_verdict([0.5, 0.51, 0.49], [0.6] * 3, "at_least",
                         margin_kind="accuracy")["verdict"] == REVERSED


# --- the family as a whole (issue 31 item 10) ---------------------------------------------------

def test_holm_keeps_only_the_claims_that_survive_the_family():
    frame = pd.DataFrame({"verdict": [HOLDS, HOLDS, HOLDS, INCONCLUSIVE],
                          "p holds": [0.001, 0.012, 0.02, 0.5]})
    # thresholds 0.025/4, 0.025/3, 0.025/2, ...: the first passes, the second (0.012 > 0.0083)
    # stops the step-down
    assert holm(frame) == [True, False, False, False]
    note = family_note(frame.assign(**{"holds after Holm": holm(frame)}))
    assert "3 of 4 claims hold" in note and "about 0.1 holding by chance" in note
    assert "1 still hold" in note


def test_the_p_value_of_holds_agrees_with_the_interval():
    values = {1: ([0.5, 0.52, 0.48], [0.0] * 3)}
    table = claim_table(GREATER, values)
    last = table.iloc[-1]
    assert last["verdict"] == HOLDS and last["p holds"] < 0.025
    weak = claim_table(GREATER, {1: ([0.005, 0.02, 0.012], [0.0] * 3)}).iloc[-1]
    assert weak["verdict"] == INCONCLUSIVE and weak["p holds"] > 0.025
