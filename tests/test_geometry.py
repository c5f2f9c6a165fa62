"""Selection logic of notebook 03: which levels Fig 4 can draw, which matrices Figs 14-15 show."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lthkit import geometry
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
