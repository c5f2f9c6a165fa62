"""PointEvaluator: fused blocks of points against one by one, exact BatchNorm recalibration in
any chunking, one-pass statistics, bf16, points_per_pass auto."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lthkit.data.synthetic import synthetic_images
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.nets.points import ParamLayout
from lthkit.nets.probe import CPU_POINTS_PER_PASS, choose_points_per_pass
from lthkit.nets.pruning import full_mask, random_prune


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
    return PointEvaluator(model, x, y, **{"batch_size": 48, **kw})


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


class _SmallBnNet(torch.nn.Module):
    """Conv-BN layers with a residual branch and a BatchNorm1d: every kind of dependency between
    layers' statistics, small enough to recalibrate one example per chunk."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.conv1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(4)
        self.short = torch.nn.Conv2d(3, 4, 1, stride=2)
        self.bn_short = torch.nn.BatchNorm2d(4)
        self.fc1 = torch.nn.Linear(4, 6)
        self.bn3 = torch.nn.BatchNorm1d(6)
        self.fc2 = torch.nn.Linear(6, 10)
        for prm in self.parameters():  # BatchNorm scales away from 1: the layers interact
            prm.data = torch.randn(prm.shape, generator=g) * 0.5 + (1.0 if prm.dim() == 1 else 0)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)) + self.bn_short(self.short(x)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.fc2(torch.relu(self.bn3(self.fc1(out))))


def _full_batch_reference(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """update_bn with all examples as one batch, then the eval-mode loss: what 'exact' means."""
    ref = copy.deepcopy(model)
    torch.optim.swa_utils.update_bn([x], ref)
    ref.eval()
    with torch.no_grad():
        loss = F.cross_entropy(ref(x), y).item()
    return {n: b for n, b in ref.named_buffers() if "running" in n}, loss


@pytest.mark.parametrize("fused", [False, True])
def test_statistics_are_exact_whatever_the_chunking(fused):
    """Issue 17.1: chunks of 1, 7, 64 and all 70 examples give update_bn's one-batch statistics
    (the old cumulative average of chunk statistics was off by percents)."""
    model = _SmallBnNet()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(70, 3, 8, 8, generator=g) * 2 + 1
    y = torch.randint(0, 10, (70,), generator=g)
    expected, loss = _full_batch_reference(model, x, y)
    layout = ParamLayout.from_model(model)
    point = layout.flatten(model.state_dict())
    for chunk in (1, 7, 64, 70):
        ev = PointEvaluator(model, x, y, batch_size=chunk, use_vmap=fused, points_per_pass=2)
        buffers = ev.recalibrated_buffers(point)
        for name, b in expected.items():
            torch.testing.assert_close(buffers[name], b, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"chunk {chunk}, {name}: {m}")
        assert float(ev.evaluate(point)[0]) == pytest.approx(loss, rel=1e-5), f"chunk {chunk}"
        both = ev.evaluate(torch.stack([point, point]))[0]  # the fused pass of 2 points
        torch.testing.assert_close(both, torch.full((2,), loss, dtype=torch.float64), rtol=1e-5,
                                   atol=0)


def test_recalibration_matches_update_bn_on_resnet(setup):
    """ResNet-20 in chunks of 7 and 16 and in one chunk: update_bn's one-batch statistics."""
    model, x, y, layout, points = setup
    ref = build_model("resnet20", 2, "synthetic_cifar10")
    ref.load_state_dict(layout.state_dict(points[0]), strict=False)
    expected, loss = _full_batch_reference(ref, x, y)
    for chunk in (7, 16, 48):
        ev = _evaluator(setup, batch_size=chunk)
        buffers = ev.recalibrated_buffers(points[0])
        for name, b in expected.items():
            torch.testing.assert_close(buffers[name], b, rtol=1e-4, atol=1e-5)
        assert float(ev.evaluate(points[0])[0]) == pytest.approx(loss, rel=1e-5)


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
    other = layout.state_dict(points[2], {n: b for n, b in model.named_buffers()})
    fused = _evaluator(setup, recalibrate_bn=False, use_vmap=True, points_per_pass=2
                       ).evaluate_states([state, other])[0]
    loop = _evaluator(setup, recalibrate_bn=False, use_vmap=False).evaluate_states([state, other])[0]
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-7)
    assert float(fused[0]) == pytest.approx(float(off[0]), rel=1e-5), "each its own statistics"


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


@pytest.mark.parametrize("mode", ["two passes, one chunk", "two passes, chunks", "one pass"])
def test_fused_points_equal_single_evaluations(setup, mode):
    """P points through one grouped network = each point alone (fp32 rounding), in every mode."""
    points = setup[4]
    kw = {"two passes, one chunk": {"batch_size": 48}, "two passes, chunks": {"batch_size": 24},
          "one pass": {"batch_size": 48, "one_pass_bn": True}}[mode]
    alone = _evaluator(setup, use_vmap=False, points_per_pass=1, **kw)
    single = [alone.evaluate(p) for p in points]
    for p in (5, 3):  # one block of all five; blocks of 3 + 2
        fused = _evaluator(setup, use_vmap=True, points_per_pass=p, **kw)
        loss, acc = fused.evaluate(points)
        torch.testing.assert_close(loss, torch.stack([s[0] for s in single]), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(acc, torch.stack([s[1] for s in single]))


def test_bf16_losses_match_fp32_on_the_smoke_model():
    """landscape.dtype = bfloat16 on the smoke model (ResNet-20 width 8, 64 examples): losses
    within 1% of fp32 at the initialization and around it (measured: under 0.05%)."""
    model = build_model("resnet20", 8, "synthetic_cifar10", seed=0)
    x, y = synthetic_images((3, 32, 32), 64, "train", 0.5, seed=1)
    x = (x.float() / 255 - 0.5) / 0.25
    layout = ParamLayout.from_model(model)
    base = layout.flatten(model.state_dict())
    g = torch.Generator().manual_seed(2)
    points = torch.stack([base, base + 0.3 * base.abs().mean() * torch.randn(base.numel(),
                                                                             generator=g)])
    for one_pass in (False, True):
        kw = {"batch_size": 64, "one_pass_bn": one_pass, "points_per_pass": 2}
        fp32 = PointEvaluator(model, x, y, **kw).losses(points)
        bf16 = PointEvaluator(model, x, y, dtype="bfloat16", **kw).losses(points)
        assert not torch.equal(fp32, bf16), "bf16 really ran"
        torch.testing.assert_close(bf16, fp32, rtol=1e-2, atol=0)


def test_points_per_pass_auto(setup, capsys):
    ev = _evaluator(setup, points_per_pass="auto", use_vmap=True)
    assert ev.points_per_pass == CPU_POINTS_PER_PASS, "CPU: the fixed size, memory permitting"
    assert "points_per_pass auto: 8" in capsys.readouterr().out, "the choice is printed"
    probed, why = choose_points_per_pass(_evaluator(setup, points_per_pass="auto", use_vmap=True,
                                                    verbose=False), probe=True)
    assert probed in (1, 2, 4, 8, 16, 32, 64, 128, 256) and "points/s by block size" in why
    assert _evaluator(setup, points_per_pass="auto", use_vmap=False).points_per_pass == 1
    with pytest.raises(ValueError, match="points_per_pass"):
        _evaluator(setup, points_per_pass=0)
    with pytest.raises(ValueError, match="landscape.dtype"):
        _evaluator(setup, dtype="float16")
    assert _evaluator(setup, dtype="tfloat32").dtype == torch.float32


def test_grouped_call_equals_each_model(setup):
    """The reusable piece: P models stacked and run as one grouped network."""
    from lthkit.nets.points import grouped_call, stack_states

    x = setup[1][:8]
    models = [build_model("resnet20", 2, "synthetic_cifar10", seed=s).eval() for s in range(3)]
    params, buffers = stack_states(models)
    with torch.no_grad():
        for fused in (True, False):
            out = grouped_call(models[0], {**params, **buffers}, x, fused=fused)
            torch.testing.assert_close(out, torch.stack([m(x) for m in models]), rtol=1e-5,
                                       atol=1e-6)
    # train mode: batch statistics, the P running statistics updated in place, gradients flow
    own = [copy.deepcopy(m).train() for m in models]
    models[0].train()
    out = grouped_call(models[0], {**params, **buffers}, x)
    torch.testing.assert_close(out, torch.stack([m(x) for m in own]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(buffers["bn.running_var"],
                               torch.stack([m.bn.running_var for m in own]))
    out.square().sum().backward()
    assert params["conv.weight"].grad is not None


def test_bf16_normalization_of_the_accelerator_path_under_vmap():
    """The bf16 BatchNorm used on GPUs (fp32 scale and shift applied in bf16) equals eval-mode
    F.batch_norm to bf16 rounding, for a stack of points under vmap."""
    from lthkit.nets.batchnorm import _normalize_low_precision

    g = torch.Generator().manual_seed(5)
    bn = torch.nn.BatchNorm2d(6).eval()
    bn.weight.data = torch.randn(6, generator=g)
    bn.bias.data = torch.randn(6, generator=g)
    x = torch.randn(3, 4, 6, 5, 5, generator=g) * 3 + 1
    mean, var = torch.randn(3, 6, generator=g), torch.rand(3, 6, generator=g) + 0.5
    got = torch.vmap(lambda a, mu, v: _normalize_low_precision(a.bfloat16(), mu, v, bn))(x, mean, var)
    want = torch.stack([F.batch_norm(x[i], mean[i], var[i], bn.weight, bn.bias, False, 0.0, bn.eps)
                        for i in range(3)])
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=5e-2)


def test_precision_sets_tf32_only_while_evaluating(setup):
    """float32 turns TF32 off during evaluation (PyTorch lets cuDNN use it by default),
    tfloat32 turns it on; the global flags come back as they were."""
    model = setup[0]
    seen: list[bool] = []
    handle = model.conv.register_forward_hook(
        lambda *_: seen.append(torch.backends.cudnn.allow_tf32))
    before = torch.backends.cudnn.allow_tf32
    try:
        for dtype in ("float32", "tfloat32"):
            _evaluator(setup, dtype=dtype, points_per_pass=1).evaluate(setup[4][0])
    finally:
        handle.remove()
    assert seen[0] is False and seen[-1] is True
    assert torch.backends.cudnn.allow_tf32 == before


@pytest.mark.parametrize("arch,width,dataset", [("vgg16", 4, "synthetic_cifar10"),
                                                ("lenet5", 3, "synthetic_mnist"),
                                                ("mlp", 30, "synthetic_mnist")])
def test_fused_equals_loop_for_every_architecture(arch, width, dataset):
    model = build_model(arch, width, dataset, seed=0)
    shape = (1, 28, 28) if dataset.endswith("mnist") else (3, 32, 32)
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(12, *shape, generator=g), torch.randint(0, 10, (12,), generator=g)
    layout = ParamLayout.from_model(model)
    base = layout.flatten(model.state_dict())
    points = base + 0.05 * base.abs().mean() * torch.randn(3, base.numel(), generator=g)
    loop = PointEvaluator(model, x, y, batch_size=12, use_vmap=False).losses(points)
    fused = PointEvaluator(model, x, y, batch_size=12, use_vmap=True, points_per_pass=3
                           ).losses(points)
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-7)
