"""PointEvaluator: batched losses, loop against vmap, BatchNorm recalibration, one-pass statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lthkit.data import synthetic_images
from lthkit.models import build_model
from lthkit.points import ParamLayout, PointEvaluator
from lthkit.pruning import full_mask, random_prune


@pytest.fixture(scope="module")
def setup():
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    x, y = synthetic_images((3, 32, 32), 48, "train", 0.5, seed=0)
    x = (x.float() / 255 - 0.5) / 0.25
    layout = ParamLayout.from_model(model)
    base = layout.flatten(model.state_dict())
    g = torch.Generator().manual_seed(0)
    points = base + 0.05 * torch.randn(5, base.numel(), generator=g) * base.abs().mean()
    return model, x, y, layout, points


def _evaluator(setup, **kw) -> PointEvaluator:
    model, x, y, *_ = setup
    return PointEvaluator(model, x, y, **{"batch_size": 16, **kw})


def test_layout_round_trip(setup):
    model, _, _, layout, points = setup
    state = layout.state_dict(points[0])
    assert torch.equal(layout.flatten(state), points[0])
    mask = random_prune(full_mask(model), fraction=0.5, generator=torch.Generator().manual_seed(1))
    m = layout.mask_vector(mask)
    prunable = layout.prunable_vector()
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert bool((m[~prunable] == 1).all()), "non-prunable coordinates are always in the space"


def test_batched_equals_single(setup):
    ev = _evaluator(setup, use_vmap=False)
    points = setup[4]
    loss, acc = ev.evaluate(points)
    assert loss.dtype == torch.float64 and loss.shape == (5,)
    for i in range(5):
        li, ai = ev.evaluate(points[i])
        assert float(li) == pytest.approx(float(loss[i]), rel=1e-6)
        assert float(ai) == float(acc[i])


def test_loop_and_vmap_agree(setup):
    points = setup[4]
    loop = _evaluator(setup, use_vmap=False).evaluate(points)
    vm = _evaluator(setup, use_vmap=True, points_per_pass=3).evaluate(points)
    torch.testing.assert_close(loop[0], vm[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loop[1], vm[1])


def test_recalibration_matches_update_bn(setup):
    """Recalibrated statistics are the cumulative average over the chunks, as update_bn makes."""
    model, x, y, layout, points = setup
    ev = _evaluator(setup)
    buffers = ev.recalibrated_buffers(points[0])
    ref = build_model("resnet20", 2, "synthetic_cifar10")
    ref.load_state_dict(layout.state_dict(points[0]), strict=False)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    ref.train()
    with torch.no_grad():
        for i in range(0, x.shape[0], 16):
            ref(x[i:i + 16])
    for name, b in ref.named_buffers():
        if "running" in name:
            torch.testing.assert_close(buffers[name], b, rtol=1e-5, atol=1e-6)
    ref.eval()
    with torch.no_grad():
        expected = F.cross_entropy(ref(x), y).item()
    assert float(ev.evaluate(points[0])[0]) == pytest.approx(expected, rel=1e-5)


def test_recalibration_ignores_stored_statistics(setup):
    model, x, y, layout, points = setup
    state = layout.state_dict(points[1], {n: b for n, b in model.named_buffers()})
    garbage = {k: (v * 7 + 3 if v.is_floating_point() else v) for k, v in state.items()}
    for n, _ in model.named_buffers():
        state[n] = garbage[n]
    on = _evaluator(setup).evaluate_states([state])[0]
    assert float(on[0]) == pytest.approx(float(_evaluator(setup).evaluate(points[1])[0]), rel=1e-6)
    off = _evaluator(setup, recalibrate_bn=False).evaluate_states([state])[0]
    assert abs(float(off[0]) - float(on[0])) > 1e-3, "without recalibration its own statistics count"


def test_one_pass_matches_two_passes(setup):
    """Full-batch statistics in one pass equal recalibration in one chunk (up to O(1/n))."""
    points = setup[4]
    two = _evaluator(setup, batch_size=1000).evaluate(points)[0]
    for use_vmap in (False, True):
        ev = _evaluator(setup, batch_size=1000, one_pass_bn=True, use_vmap=use_vmap)
        assert ev.one_pass
        torch.testing.assert_close(ev.evaluate(points)[0], two, rtol=2e-3, atol=1e-6)
    assert not _evaluator(setup, batch_size=16, one_pass_bn=True).one_pass, \
        "more examples than one pass holds: the two-pass path"


def test_subset(setup):
    ev = _evaluator(setup)
    sub = ev.subset(20, seed=3)
    assert sub.x.shape[0] == 20 and sub.y.shape[0] == 20
    assert torch.equal(sub.x, ev.subset(20, seed=3).x)
    assert ev.subset(1000) is ev
