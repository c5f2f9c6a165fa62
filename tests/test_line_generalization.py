"""Result 4's test accuracy along Fig 12's lines (Landscape.line_test), against a plain evaluation
written here: interpolated weights, BatchNorm statistics of the training examples, test images."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lthkit.analysis import landscape as ls
from lthkit.data.synthetic import synthetic_images
from lthkit.nets.models import build_model
from lthkit.verdicts import paper_claims as pc


class _MemoryRun:
    """A run without a folder: solutions in memory, analysis and test examples given, every
    result computed (no cache)."""

    from lthkit.train.context import Context as _Context
    point_evaluator = _Context.point_evaluator

    def __init__(self, params, model, train, test):
        self.params, self.model, self.analysis_data = params, model, train
        self.data = SimpleNamespace(test_x=test[0], test_y=test[1], normalize=lambda x: x,
                                    device=torch.device("cpu"))
        self.store = SimpleNamespace(cached=lambda analysis, key, compute: compute())

    def new_model(self):
        return copy.deepcopy(self.model)


def _images(n: int, split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = synthetic_images((3, 32, 32), n, split, 0.5, seed=seed)
    return (x.float() / 255 - 0.5) / 0.25, y


def _solutions(model) -> dict[int, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    states = {}
    for level in (0, 1):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for name, _ in model.named_parameters():
            state[name] = state[name] + 0.3 * torch.randn(state[name].shape, generator=g)
        states[level] = state
    return states


def _reference(model, states, alpha: float, train, test) -> tuple[float, float]:
    """The plain evaluation: weights (1-α) A + α B, BatchNorm statistics recomputed on the
    training examples as one batch (update_bn), eval mode on the test images."""
    net = copy.deepcopy(model)
    net.load_state_dict({k: (1 - alpha) * states[0][k] + alpha * states[1][k]
                         if k in dict(model.named_parameters()) else states[0][k]
                         for k in states[0]})
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        net.train()
        net(train[0])
        net.eval()
        out = net(test[0])
        return float(F.cross_entropy(out, test[1])), float((out.argmax(1) == test[1]).float()
                                                              .mean())


def test_test_accuracy_along_a_line_uses_training_statistics(tiny):
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    train, test = _images(32, "train", 1), _images(48, "test", 2)
    params = tiny(analysis={"subset_size": 32, "batch_size": 32},
                  landscape={"line_points": 5, "line_margin": 0.0})
    land = ls.Landscape(_MemoryRun(params, model, train, test), progress=False)
    states = _solutions(model)
    land.imp = SimpleNamespace(final=lambda lv: states[lv], mask=lambda lv: None)
    line = land.line_test(ls.PointRef("imp", 0), ls.PointRef("imp", 1))
    for i, alpha in enumerate(line["alpha"].tolist()):
        loss, acc = _reference(model, states, alpha, train, test)
        assert float(line["loss"][i]) == pytest.approx(loss, rel=1e-4), alpha
        assert float(line["acc"][i]) == pytest.approx(acc, abs=1e-6), alpha
    transductive = _reference(model, states, 0.5, test, test)[0]
    assert float(line["loss"][2]) != pytest.approx(transductive, rel=1e-3), \
        "statistics of the test images themselves would give another loss"


def test_the_table_and_the_claim_of_result_4(tiny):
    alpha = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    line = {"alpha": alpha, "acc": torch.tensor([0.90, 0.88, 0.85, 0.89, 0.92]),
            "loss": torch.tensor([0.3, 0.35, 0.5, 0.33, 0.25]), "series": "W_min(L-1) – W_min(L)"}
    table = ls.line_test_table([("fig12", 1, line)])
    assert table.loc[0, "test_acc_drop"] == pytest.approx(0.05)  # below the lower end, 0.90
    assert table.loc[0, "test_loss_rise"] == pytest.approx(0.2)
    claim = pc.by_key()["R4-fig12-accuracy"]
    assert claim.claim.expect == "at_most"
    assert claim.extract(table) == {1: pytest.approx((0.05, 0.0))}
