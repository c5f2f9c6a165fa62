"""The papers' claims (issue 31 items 4-8): what each reads, against what, on constructed tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lthkit.analysis.geometry import pairwise_matrices, similarity_blocks
from lthkit.verdicts import paper_claims as pc
from lthkit.verdicts.claims import (HOLDS, INCONCLUSIVE, MIXED, NEGLIGIBLE, REVERSED,
                                    claim_table)

FACTS = {"k": 100.0, "chance_loss": math.log(10)}


def _claim(key: str) -> pc.PaperClaim:
    return pc.by_key()[key]


def _roundtrip(table: pd.DataFrame, tmp_path: Path, name: str = "t.csv") -> pd.DataFrame:
    path = tmp_path / name
    table.to_csv(path)
    return pd.read_csv(path, index_col=0)


def _judge(key: str, frames: list[pd.DataFrame], **kw) -> pd.DataFrame:
    claim = _claim(key)
    return claim_table(claim.claim, pc.values_across(claim, frames, FACTS), **kw)


# --- item 6: two claims that could never hold --------------------------------------------------

def test_one_shot_inside_the_sublevel_set_can_hold():
    """R5-fig13-OS was 'joins below c', but the joining level of a point inside is c itself (or
    below): now 'at most c + margin', which a point inside satisfies."""
    claim = _claim("R5-fig13-OS")
    assert claim.claim.expect == "at_most"
    frames = [pd.DataFrame({"joins_at": [0.3], "sublevel_loss": [0.3]}, index=["W_OS(3)"])
              for _ in range(3)]
    assert _judge("R5-fig13-OS", frames).iloc[-1]["verdict"] == HOLDS


def test_bain_shallower_compares_the_levels_it_measured():
    """Bain's surfaces are drawn at levels 0, 7, 14 (no two consecutive): the claim compared L
    with L-1 and had no value; now each measured level against the one before it."""
    frames = [pd.DataFrame({"ticket_rise": [5.0 + r, 3.0 + r, 1.0 + r]},
                           index=pd.Index([0, 7, 14], name="level")) for r in (0.0, 0.1, -0.1)]
    table = _judge("Bain-fig6-shallower", frames)
    assert list(table["level"]) == [7, 14, "all"]
    assert table.iloc[-1]["verdict"] == HOLDS


# --- item 7: compare what the paper compares ----------------------------------------------------

def _strategies(lr_rewind_acc: float) -> pd.DataFrame:
    rows = [("imp", 0.90), ("one_shot", 0.85), ("fine_tune", 0.86), ("lr_rewind", lr_rewind_acc),
            ("random_reinit", 0.80), ("random_prune", 0.82), ("random_prune_oneshot", 0.84)]
    return pd.DataFrame({"strategy": [s for s, _ in rows], "level": 1,
                         "test_acc": [a for _, a in rows], "train_loss": 0.1})


def test_fig2_leaves_out_learning_rate_rewinding():
    """W_LRR (trained by default as background) is in neither Fig 2 nor Fig 24."""
    table = _strategies(0.95)  # W_LRR best of all: it must not be the comparison
    assert _claim("R0-fig2-accuracy").extract(table) == {1: (0.90, 0.86)}
    assert _claim("R0-fig24-accuracy").extract(table) == {1: (0.90, 0.86)}
    no_rp = _strategies(0.5)
    no_rp.loc[no_rp["strategy"] == "random_prune_oneshot", "test_acc"] = 0.99
    assert _claim("R0-fig2-accuracy").extract(no_rp) == {1: (0.90, 0.99)}
    assert _claim("R0-fig24-accuracy").extract(no_rp) == {1: (0.90, 0.86)}, "Fig 24 has no RP'"


def test_fig19_small_barrier_is_at_most_the_margin():
    """A barrier cannot be negative: 'small' is at most the margin, not equality. A barrier of
    0 everywhere holds (the equality test would hold too, but a barrier far below the margin
    with some spread must also hold)."""
    assert _claim("R6-fig19").claim.expect == "at_most"
    frames = [pd.DataFrame({"figure": ["fig19"], "series": ["W_min(L) – W_OS(L)"], "level": [1],
                            "barrier": [b], "barrier_linear": [b]}) for b in (0.0, 0.004, 0.0)]
    assert _judge("R6-fig19", frames).iloc[-1]["verdict"] == HOLDS


def test_fig17_judges_the_huge_barrier_only_and_says_why():
    claim = _claim("R6-fig17")
    frames = [pd.DataFrame({"figure": ["fig17", "fig17"], "level": [1, 1],
                            "series": ["W_min(L) – W_RP'(L)", "Pr_L(min(L-1)) – W_RP(L)"],
                            "barrier": [b, 2.0 + b], "barrier_linear": [b, 2.0 + b]})
              for b in (0.5, 0.6, 0.4)]
    assert claim.extract(frames[0]) == {1: (2.5, 0.0)}
    assert _judge("R6-fig17", frames).iloc[-1]["verdict"] == HOLDS
    assert "Result 5 places [W_RP'] outside" in claim.claim.quote


def test_ie643_task3_compares_each_optimizers_own_ticket():
    table = pd.DataFrame({"level": [1, 2], "weights_left_%": [50.0, 25.0],
                          "source_ticket_test_acc": [0.975, 0.97],
                          "target_ticket_test_acc": [0.972, 0.968],
                          "transferred_ticket_test_acc": [0.5, 0.4]})
    assert _claim("IE643-task3-optimizers").extract(table) == {1: (0.975, 0.972),
                                                               2: (0.97, 0.968)}


def test_ie643_task2_is_judged_against_chance_too():
    frames = [pd.DataFrame({"level": [1], "weights_left_%": [50.0], "chance_test_acc": [0.2],
                            "target_ticket_test_acc": [0.97],
                            "transferred_ticket_test_acc": [a]}) for a in (0.211, 0.22, 0.205)]
    table = _judge("IE643-task2-chance", frames)
    assert table.iloc[-1]["verdict"] == HOLDS  # within 5 points of chance
    far = [f.assign(transferred_ticket_test_acc=0.6 + i / 100) for i, f in enumerate(frames)]
    assert _judge("IE643-task2-chance", far).iloc[-1]["verdict"] == REVERSED


# --- item 4: spectra short of their tolerance ----------------------------------------------------

def _volume_table(bounds: tuple[float, float], flags: str = "") -> pd.DataFrame:
    return pd.DataFrame({"level": [1], "V'(6) Pr_L(min(L-1))": [20.0], "V'(6) W_min(L)": [10.0],
                         "bound Pr_L(min(L-1))": [bounds[0]], "bound W_min(L)": [bounds[1]],
                         "flags": [flags]}).set_index("level")


def test_a_spectrum_short_of_tol_enters_with_its_bound():
    short = ("W_min(L): not converged: residual 3.0e-02 > tol 0.01 after 40 products")
    claim = _claim("R1-table1")
    frame = _volume_table((0.5, 1.0), short)
    assert claim.flagged(frame) == {}, "a bounded value is not left out"
    assert claim.bound(frame) == {1: pytest.approx(1.5)}
    measured = pc.values_across(claim, [frame] * 3, FACTS)
    assert measured[1].bound == [1.5] * 3 and measured[1].scale == [100.0] * 3
    row = claim_table(claim.claim, measured).iloc[0]
    assert row["left out"] == 0 and row["bound"] == pytest.approx(1.5)


def test_only_values_with_no_bound_are_left_out_naming_the_key():
    claim = _claim("R1-table1")
    unbounded = _volume_table((math.inf, 1.0), "Pr_L(min(L-1)): not converged: ...")
    assert claim.flagged(unbounded) == {1: pc.NO_BOUND}
    assert "hessian.max_iterations" in pc.NO_BOUND
    few = _volume_table((0.1, 0.1), "W_min(L): 4 of 6 eigenvalues > 1e-06 x lambda_max")
    assert claim.flagged(few) == {1: pc.FEWER_THAN_K}
    old = _volume_table((0.1, 0.1), "W_min(L): not converged").drop(
        columns=["bound Pr_L(min(L-1))", "bound W_min(L)"])
    assert claim.flagged(old) == {1: pc.UNBOUNDED_FLAG}, "a table without bounds: as before"


def test_fig22_claims_read_the_bound_and_count_of_their_own_k():
    table = pd.DataFrame({"level": [1], "W_min(L) k=2": [1.0], "Pr_L(min(L-1)) k=2": [2.0],
                          "W_min(L) k=6": [3.0], "Pr_L(min(L-1)) k=6": [4.0],
                          "bound W_min(L) k=2": [0.1], "bound Pr_L(min(L-1)) k=2": [0.2],
                          "bound W_min(L) k=6": [0.3], "bound Pr_L(min(L-1)) k=6": [0.4],
                          "flags": ["W_min(L): 4 of 6 eigenvalues > 1e-06 x lambda_max"]})
    k2, k6 = pc.fig22_claims([2, 6])
    assert k2.flagged(table) == {} and k6.flagged(table) == {1: pc.FEWER_THAN_K}
    assert k2.bound(table) == {1: pytest.approx(0.3)}
    assert pc.values_across(k2, [table], FACTS)[1].scale == [2.0], "margin per eigenvalue x k"


# --- item 5: margins per eigenvalue and of the chance-level loss ---------------------------------

def test_barrier_margins_scale_with_the_chance_level_loss():
    frames = [pd.DataFrame({"figure": ["fig12"], "series": ["W_min(L-1) – W_min(L)"],
                            "level": [1], "loss_A": [0.01], "loss_B": [0.01],
                            "barrier": [2e-4], "barrier_linear": [2e-4]})] * 3
    measured = pc.values_across(_claim("R4-fig12"), frames, FACTS)
    assert measured[1].scale == [pytest.approx(math.log(10))] * 3


def test_run_facts_are_the_runs_k_and_classes(tiny):
    facts = pc.run_facts(tiny(hessian={"k": 7, "ks_fig22": [7]}))
    assert facts == {"k": 7.0, "chance_loss": pytest.approx(math.log(10))}


# --- item 8: the statements that had no claim ------------------------------------------------------

def _solutions(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(50, generator=g)
    points = {f"W_min({lv})": base + 0.1 * torch.randn(50, generator=g) for lv in range(3)}
    points["W_OS(2)"] = base + 0.2 * torch.randn(50, generator=g)
    for name in ("W_RI(2)", "W_RP(2)", "W_RP'(2)"):
        points[name] = torch.randn(50, generator=g)
    return points


def test_figs_14_15_read_the_matrices_as_blocks(tmp_path):
    frames = [_roundtrip(similarity_blocks({2: pairwise_matrices(_solutions(s))}), tmp_path)
              for s in range(3)]
    blocks = frames[0]
    assert blocks.loc[2, "distance IMP-IMP"] < blocks.loc[2, "distance IMP-W_RI"]
    assert blocks.loc[2, "imp_solutions"] == 3
    for key in ("R5-fig14-RI", "R5-fig14-RP", "R5-fig14-OS", "R5-fig15-RI", "R5-fig15-RP",
                "R5-fig15-OS"):
        assert _judge(key, frames).iloc[-1]["verdict"] == HOLDS, key
    flipped = [f.rename(columns={"distance IMP-W_OS": "distance IMP-W_RP'",
                                 "distance IMP-W_RP'": "distance IMP-W_OS"}) for f in frames]
    assert _judge("R5-fig14-OS", flipped).iloc[-1]["verdict"] == REVERSED


def test_table5_volume_half_of_results_2_and_3(tmp_path):
    rows = []
    for L, (pruned, before) in {1: (30.0, 20.0), 2: (31.0, 22.0)}.items():
        pair = f"{L - 1}->{L}"
        rows += [{"pair": pair, "space": f"level {L - 1}", "solution": f"W_min({L - 1}) (x)",
                  "V'(6)": before, "bound": 0.1, "flags": ""},
                 {"pair": pair, "space": f"level {L - 1}", "solution": f"RPr_{L - 1}(min({L}))",
                  "V'(6)": 0.0, "bound": 0.1, "flags": ""},
                 {"pair": pair, "space": f"level {L}", "solution": f"W_min({L}) (x)",
                  "V'(6)": 0.0, "bound": 0.1, "flags": ""},
                 {"pair": pair, "space": f"level {L}", "solution": f"Pr_{L}(min({L - 1})) (x)",
                  "V'(6)": pruned, "bound": 0.2, "flags": ""}]
    table = _roundtrip(pd.DataFrame(rows).set_index(["pair", "space", "solution"]), tmp_path)
    claim = _claim("R2-table5-volume")
    assert claim.extract(table) == {1: (30.0, 20.0), 2: (31.0, 22.0)}
    assert claim.bound(table) == {1: pytest.approx(0.3), 2: pytest.approx(0.3)}
    assert claim.claim.expect == "greater"  # a larger V': a smaller volume


def test_band_cut_raises_the_loss_more():
    losses = pd.DataFrame({"level": [1, 2], "Pr_L(min(L-1))": [0.5, 0.6],
                           "band Pr_L(min(L-1))": [0.9, np.nan]}).set_index("level")
    assert _claim("R6-band-loss").extract(losses) == {1: (0.5, 0.9)}


def test_result3_sweep_compares_each_fraction_with_the_one_before():
    frames = [pd.DataFrame({"fraction": [0.1, 0.2, 0.4], "loss": [0.5 + e, 0.6 + e, 0.9 + e],
                            "V'(k)": [10.0, 12.0, 15.0], "bound pruned": [0.1, 0.2, 0.3],
                            "flags": ["", "", ""], "k": [6] * 3},
                           index=pd.Index([0, 1, 2], name="step")) for e in (0.0, 0.01, -0.01)]
    loss = _judge("R3-sweep-loss", frames)
    assert list(loss["level"]) == [1, 2, "all"] and loss.iloc[-1]["verdict"] == HOLDS
    volume = pc.values_across(_claim("R3-sweep-volume"), frames, FACTS)
    assert volume[2].a[0] == 15.0 and volume[2].b[0] == 12.0
    assert volume[2].bound == [pytest.approx(0.5)] * 3  # both steps' bounds
    assert _claim("R3-sweep-volume").claim.over.startswith("step")


def test_bain_gap_grows_past_half_the_weights(tmp_path):
    frames = [pd.DataFrame({"level": [0, 1, 2, 3], "weights_left_%": [100.0, 60.0, 36.0, 21.6],
                            "ticket_test_acc": [0.6] * 4,
                            "gap": [0.0, 0.0 + e, 0.05 + e, 0.12 + e]}).set_index("level")
              for e in (0.0, 0.005, -0.005)]
    table = _judge("Bain-fig5-gap-grows", frames)
    assert list(table["level"]) == [3, "all"], "only levels at or below 50% of the weights"
    assert table.iloc[-1]["verdict"] == HOLDS


def test_bain_at_three_percent_matches_the_dense_network_and_doubles_the_random_ticket():
    frames = [pd.DataFrame({"level": [0, 5, 6], "weights_left_%": [100.0, 7.8, 3.1],
                            "ticket_test_acc": [0.60, 0.59, 0.600 + e],
                            "random_test_acc": [np.nan, 0.4, 0.25 + e]}).set_index("level")
              for e in (0.0, 0.002, -0.002)]
    assert _judge("Bain-fig5-dense", frames).iloc[-1]["verdict"] == HOLDS
    assert _claim("Bain-fig5-twice").extract(frames[0]) == {6: (0.6, 0.5)}
    assert _judge("Bain-fig5-twice", frames).iloc[-1]["verdict"] == HOLDS


def test_bain_fig7_the_sparsest_random_ticket_is_the_flattest():
    frames = [pd.DataFrame({"random_curvature": [4.0, 3.0, 0.2 + e]},
                           index=pd.Index([0, 2, 4], name="level")) for e in (0, 0.01, -0.01)]
    table = _judge("Bain-fig7-flat", frames)
    assert list(table["level"]) == [0, 2, "all"] and table.iloc[-1]["verdict"] == HOLDS


def test_ie643_some_level_beats_the_dense_network():
    frames = [pd.DataFrame({"level": [0, 1, 2, 3], "weights_left_%": [100.0, 50, 25, 12],
                            "ticket_vs_dense": [0.0, 0.003 + e, 0.03 + e, -0.05 + e]})
              for e in (0.0, 0.001, -0.001)]
    table = _judge("IE643-better-mlp", frames)
    assert table.iloc[-1]["verdict"] == HOLDS, "level 2 beats it; level 3 does not refute 'some'"
    assert _claim("IE643-better-mlp").claim.quantifier == "some"


def test_every_new_claim_is_measured_by_its_notebook():
    keys = {c.claim.key for c in pc.all_claims()}
    for key in ("R5-fig14-RI", "R5-fig15-OS", "R2-table5-volume", "R6-band-loss",
                "R3-sweep-loss", "R3-sweep-volume", "Bain-fig5-gap-grows", "Bain-fig5-dense",
                "Bain-fig5-twice", "Bain-fig7-flat", "IE643-better-mlp", "IE643-better-lenet5",
                "IE643-task2-chance"):
        assert key in keys, key


def test_mixed_levels_reach_the_report_frame():
    frames = [pd.DataFrame({"level": [1, 4], "to_projected_previous": [1.0, 3.0 + e],
                            "to_solution": [2.0 + e, 1.0]}) for e in (0.0, 0.01, -0.01)]
    table = _judge("R1-fig3", frames)
    assert list(table["verdict"]) == [HOLDS, REVERSED, MIXED]
    assert pd.isna(table.iloc[-1]["replicates needed"])
    assert INCONCLUSIVE != NEGLIGIBLE  # the names stay distinct
