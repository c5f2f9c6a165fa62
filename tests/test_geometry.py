"""Selection logic of notebook 03: which levels Fig 4 can draw, which matrices Figs 14-15 show."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lthkit.analysis import geometry
from lthkit.nets.points import ParamLayout


class _Imp:
    """Stands for ImpResults: levels 0..3, per-epoch weights kept at `kept` levels."""

    def __init__(self, tmp: Path, kept: set[int]):
        self.tmp, self.kept = tmp, kept
        for lv in kept:
            (tmp / f"level{lv}").mkdir()
            (tmp / f"level{lv}" / "start.pt").write_bytes(b"")

    def level(self, lv):
        return SimpleNamespace(start_file=self.tmp / f"level{lv}" / "start.pt")

    def levels_done(self):
        return [0, 1, 2, 3]

    def final(self, lv):
        return {"weight": torch.full((2, 2), float(lv + 1))}


def test_trajectory_levels_need_their_own_and_the_previous_run(tmp_path):
    imp = _Imp(tmp_path, kept={0, 1, 3})
    assert geometry.trajectory_levels(imp, [1, 2, 3]) == [1]  # 2 kept none, 3's previous neither


@pytest.mark.parametrize("have, keys", [([], [None]), ([("random_reinit", 1), ("one_shot", 3),
                                                         ("random_prune", 3)], [1, 3])])
def test_similarity_matrices_one_per_baseline_level(tmp_path, have, keys):
    imp = _Imp(tmp_path, kept=set())
    base = SimpleNamespace(available=lambda: have,
                           levels=lambda: sorted({lv for _, lv in have}),
                           final=lambda kind, lv: {"weight": -torch.ones(2, 2) * lv})
    layout = ParamLayout.from_model(nn.Linear(2, 2, bias=False))
    matrices = geometry.similarity_matrices(imp, base, layout)
    assert list(matrices) == keys
    for lv, (distance, cosine) in matrices.items():
        names = list(distance.index)
        assert names[:4] == [f"W_min({i})" for i in range(4)]
        assert len(names) == 4 + sum(level == lv for _, level in have)
        assert cosine.loc["W_min(0)", "W_min(3)"] == pytest.approx(1.0)
        assert distance.loc["W_min(0)", "W_min(1)"] == pytest.approx(2.0)


def test_trajectory_slopes_measure_how_fast_ln_loss_falls():
    """Fig 4 as numbers: exp(-0.5 e) falls at slope -0.5, a flat run at 0; a NaN loss is left out
    of the fit, and a trajectory with one usable loss has no slope."""
    epochs = torch.arange(6.0)
    steep = torch.exp(-0.5 * epochs) * 2.0
    flat = torch.full((6,), 0.7)
    noisy = steep.clone()
    noisy[3] = float("nan")
    table = geometry.trajectory_slopes({
        2: {"epochs": epochs, "loss": steep, "projected_epochs": epochs, "projected_loss": flat},
        3: {"epochs": epochs, "loss": noisy, "projected_epochs": epochs[:1],
            "projected_loss": flat[:1]}})
    assert table.loc[2, "slope_level"] == pytest.approx(-0.5)
    assert table.loc[2, "slope_projected"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc[3, "slope_level"] == pytest.approx(-0.5)
    assert table.loc[3, "slope_projected"] != table.loc[3, "slope_projected"]  # NaN
    assert table.loc[2, "end_loss_level"] == pytest.approx(2.0 * float(torch.exp(torch.tensor(-2.5))))


def test_the_steeper_trajectory_claim_reads_the_slopes_with_a_margin_of_the_steeper_one():
    import pandas as pd

    from lthkit.verdicts import paper_claims as pc

    table = pd.DataFrame({"level": [1, 2], "slope_level": [-0.5, -0.2],
                          "slope_projected": [-0.1, -0.4]}).set_index("level")
    for key in ("R1-fig4", "R1-fig25"):
        claim = pc.by_key()[key]
        assert claim.extract(table) == {1: (-0.5, -0.1), 2: (-0.2, -0.4)}
        assert claim.scale(table) == {1: 0.5, 2: 0.4} and claim.claim.margin == "slope"
        assert claim.claim.expect == "less"
