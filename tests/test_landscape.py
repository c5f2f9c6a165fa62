"""The loss-landscape engine (lines, radii, planes, filter-normalized directions) and notebooks 05-07."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from lthkit.analysis import landscape as ls
from lthkit.config.base import ParamsError
from lthkit.config.params import load_params
from lthkit.data.synthetic import synthetic_images
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.nets.points import ParamLayout
from lthkit.nets.pruning import full_mask, random_prune
from lthkit.store.layout import RunStore

ROOT = Path(__file__).resolve().parents[1]


# --- lines --------------------------------------------------------------------------------------

def test_alpha_grid_has_both_ends_and_margin():
    a = ls.alpha_grid(9, 0.2)
    assert (a == 0).sum() == 1 and (a == 1).sum() == 1
    assert float(a.min()) <= -0.2 + 1e-12 and float(a.max()) >= 1.2 - 1e-12
    torch.testing.assert_close(a.diff(), torch.full((len(a) - 1,), 1 / 8, dtype=torch.float64))
    assert len(ls.alpha_grid(5, 0.0)) == 5


@pytest.fixture(scope="module")
def tiny_net():
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    x, y = synthetic_images((3, 32, 32), 32, "train", 0.5, seed=0)
    x = (x.float() / 255 - 0.5) / 0.25
    ev = PointEvaluator(model, x, y, batch_size=32)
    base = ev.layout.flatten(model.state_dict())
    g = torch.Generator().manual_seed(0)
    other = base + 0.3 * base.abs().mean() * torch.randn(base.numel(), generator=g)
    return ev, base, other


def test_line_ends_are_the_points_own_losses(tiny_net):
    ev, a, b = tiny_net
    line = ls.evaluate_line(ev.evaluate, a, b, points=5, margin=0.25, chunk=3)
    own_a, acc_a = ev.evaluate(a)
    own_b, _ = ev.evaluate(b)
    assert line["loss_a"] == pytest.approx(float(own_a), rel=1e-6)
    assert line["loss_b"] == pytest.approx(float(own_b), rel=1e-6)
    assert float(line["acc"][line["alpha"] == 0][0]) == float(acc_a)
    assert len(line["loss"]) == len(line["alpha"]) == 5 + 2 * 1
    # the barrier: the highest loss on the segment (not on its margins) above the higher end,
    # from losses evaluated here point by point
    inside = [float(t) for t in line["alpha"] if 0 <= t <= 1]
    segment = max(float(ev.evaluate((1 - t) * a + t * b)[0]) for t in inside)
    assert line["barrier"] == pytest.approx(segment - max(float(own_a), float(own_b)),
                                            rel=1e-5, abs=1e-6)


def test_barrier_of_a_known_bump():
    """Loss 2 - |W - m|²/|A - m|² is 1 at A and B and 2 at their midpoint m: barrier 1 at α = 0.5."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(20, generator=g), torch.randn(20, generator=g)
    m = (a + b) / 2
    r2 = float(((a - m) ** 2).sum())

    def loss(points: torch.Tensor) -> torch.Tensor:
        return 2 - ((points - m) ** 2).sum(1) / r2

    line = ls.evaluate_line(loss, a, b, points=11, margin=0.2)
    assert line["loss_a"] == pytest.approx(1.0, abs=1e-5)
    assert line["barrier"] == pytest.approx(1.0, abs=1e-5)
    assert line["barrier_alpha"] == pytest.approx(0.5)
    assert "acc" not in line


# --- planes -------------------------------------------------------------------------------------

def test_plane_axes_are_orthonormal_and_points_land_where_expected():
    g = torch.Generator().manual_seed(2)
    a, b, c = (torch.randn(40, generator=g, dtype=torch.float64) for _ in range(3))
    u, v = ls.plane_basis(a, b, c)
    assert float(u.norm()) == pytest.approx(1.0) and float(v.norm()) == pytest.approx(1.0)
    assert abs(float(u @ v)) < 1e-12
    coords = ls.project(torch.stack([a, b, c]), a, u, v)
    torch.testing.assert_close(coords[0], torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(coords[1], torch.tensor([float((b - a).norm()), 0.0, 0.0],
                                                       dtype=torch.float64))
    beta = float(((c - a) - ((c - a) @ u) * u).norm())
    torch.testing.assert_close(coords[2], torch.tensor([float((c - a) @ u), beta, 0.0],
                                                       dtype=torch.float64))
    # an off-plane point: 2 u + 3 v + 5 n from A, n a unit normal of the plane
    n = torch.randn(40, generator=g, dtype=torch.float64)
    n = n - (n @ u) * u - (n @ v) * v
    n = n / n.norm()
    off = ls.project(a + 2 * u + 3 * v + 5 * n, a, u, v)[0]
    torch.testing.assert_close(off, torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64))


def test_plane_grid_losses_and_projections():
    g = torch.Generator().manual_seed(3)
    a, b, c, e = (torch.randn(12, generator=g, dtype=torch.float64) for _ in range(4))

    def loss(points):
        return (points ** 2).sum(1)

    plane = ls.evaluate_plane(loss, a, b, c, {"E": e}, resolution=5, margin=0.1, chunk=7)
    assert plane["loss"].shape == (5, 5) and plane["labels"] == ["A", "B", "C", "E"]
    u, v = ls.plane_basis(a, b, c)
    i, j = 1, 3  # row i is y[i], column j is x[j]
    w = a + plane["x"][j] * u + plane["y"][i] * v
    assert float(plane["loss"][i, j]) == pytest.approx(float((w ** 2).sum()))
    xy = plane["coords"]
    assert float(plane["x"].min()) < float(xy[:, 0].min()) and float(plane["x"].max()) > float(xy[:, 0].max())
    assert float(plane["y"].min()) < float(xy[:, 1].min()) and float(plane["y"].max()) > float(xy[:, 1].max())
    assert float(plane["distance"][:3].abs().max()) < 1e-9 and float(plane["distance"][3]) > 0


def test_collinear_points_span_no_plane():
    a = torch.zeros(5)
    with pytest.raises(ValueError, match="one line"):
        ls.plane_basis(a, a + 1, a + 2)


# --- filter normalization -----------------------------------------------------------------------

def test_filter_normalized_direction():
    """Every weight of two or more dimensions gets a direction, a weight kept out of pruning too
    (issue 32 item 5: the reference filter-normalizes every such weight); zero where the mask
    prunes, on biases and on BatchNorm."""
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0, not_prunable=["fc.weight"])
    layout = ParamLayout.from_model(model)
    assert "fc.weight" not in layout.prunable
    mask = random_prune(full_mask(model), fraction=0.6, generator=torch.Generator().manual_seed(4))
    mask["conv.weight"][0] = False  # a filter pruned entirely
    m = layout.mask_vector(mask)
    point = layout.flatten(model.state_dict()) * m
    d = ls.filter_normalized_direction(layout, point, m, torch.Generator().manual_seed(5))
    assert bool((d[m == 0] == 0).all()), "pruned weights are not perturbed"
    slices = layout.slices()
    for name, shape in zip(layout.names, layout.shapes):
        dn, wn = d[slices[name]].view(shape), point[slices[name]].view(shape)
        if len(shape) >= 2:
            torch.testing.assert_close(dn.flatten(1).norm(dim=1), wn.flatten(1).norm(dim=1),
                                       rtol=1e-5, atol=1e-7)
            assert bool((dn != 0).any()), name
        else:
            assert bool((dn == 0).all()), f"{name}: biases and BatchNorm are not perturbed"
    assert bool((d[slices["conv.weight"]].view(layout.shapes[0])[0] == 0).all())
    with_bn = ls.filter_normalized_direction(layout, point, m, torch.Generator().manual_seed(5),
                                             include_bn=True)
    one_d = torch.cat([torch.full((shape.numel(),), len(shape) < 2) for shape in layout.shapes])
    torch.testing.assert_close(with_bn[one_d], point[one_d])
    torch.testing.assert_close(with_bn[~one_d], d[~one_d])


def test_surface_is_centered_on_the_point():
    center = torch.tensor([1.0, -2.0, 0.5])
    d1, d2 = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    s = ls.evaluate_surface(lambda p: (p ** 2).sum(1), center, d1, d2, span=1.0, resolution=5)
    assert float(s["loss"][2, 2]) == pytest.approx(float((center ** 2).sum()))
    assert float(s["loss"][0, 4]) == pytest.approx(float(((center + d1 - d2) ** 2).sum()))


# --- surfaces as their papers made them (issue 32) -----------------------------------------------
# The plain reference below is written from tomgoldstein/loss-landscape (Li et al.'s code, which
# Bain's fork shares): net_plotter.normalize_directions_for_weights(norm='filter',
# ignore='biasbn') and evaluation.eval_loss (the network in eval mode, mean cross-entropy).

def _li_et_al_normalized(raw: list[torch.Tensor], weights: list[torch.Tensor]
                         ) -> list[torch.Tensor]:
    """Each filter of a raw direction scaled to the norm of the weights' filter; 1-D zero."""
    out = []
    for d, w in zip(raw, weights):
        d = d.clone()
        if d.dim() <= 1:
            d.fill_(0)
        else:
            for df, wf in zip(d, w):
                df.mul_(wf.norm() / (df.norm() + 1e-10))
        out.append(d)
    return out


def _plain_loss(model, state, dx, dy, a: float, b: float, x, y) -> float:
    """The reference's loss at state + a dx + b dy: weights set, model.eval(), mean CE."""
    import copy

    import torch.nn.functional as F

    net = copy.deepcopy(model)
    net.load_state_dict(state)
    with torch.no_grad():
        for p, d1, d2 in zip(net.parameters(), dx, dy):
            p.add_(a * d1 + b * d2)
        net.eval()
        return float(F.cross_entropy(net(x), y))


class _MemoryRun:
    """A run without a folder for a Landscape: solutions as state dicts in memory, every
    result computed (no cache), the analysis examples given."""

    from lthkit.train.context import Context as _Context
    point_evaluator = _Context.point_evaluator

    def __init__(self, params, model, x, y):
        self.params, self.model, self.analysis_data = params, model, (x, y)
        self.store = SimpleNamespace(cached=lambda analysis, key, compute: compute())

    def new_model(self):
        import copy

        return copy.deepcopy(self.model)


def _stored_statistics(model, seed: int) -> dict[str, torch.Tensor]:
    """The model's state with BatchNorm running statistics far from fresh ones (seeded)."""
    g = torch.Generator().manual_seed(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for k in state:
        if k.endswith("running_mean"):
            state[k] = 0.5 * torch.randn(state[k].shape, generator=g)
        elif k.endswith("running_var"):
            state[k] = 0.3 + 2 * torch.rand(state[k].shape, generator=g)
    return state


def _memory_landscape(tiny, model, states: dict, masks: dict | None = None, n: int = 16,
                      analysis: dict | None = None, landscape: dict | None = None, **kw):
    x, y = synthetic_images((3, 32, 32), n, "train", 0.5, seed=1)
    x = (x.float() / 255 - 0.5) / 0.25
    params = tiny(analysis={"subset_size": n, "batch_size": n, **(analysis or {})},
                  landscape={"surface_resolution": 5, "surface_examples": n,
                             **(landscape or {})})
    land = ls.Landscape(_MemoryRun(params, model, x, y), progress=False, **kw)
    masks = masks or {}
    land.imp = SimpleNamespace(final=lambda lv: states[lv], mask=lambda lv: masks.get(lv))
    return land


def _surface_against_reference(land, model, state, ref, raw1, raw2, cells) -> list[float]:
    """|kit - reference| / reference at grid cells (row, column) of the kit's surface around
    `ref` on the raw directions raw1, raw2 (lists, one tensor per parameter)."""
    flat = [torch.cat([r.reshape(-1) for r in raw]) for raw in (raw1, raw2)]
    land.raw_directions = lambda level: tuple(flat)
    surface = land.surface(ref)
    weights = [state[n] for n in land.layout.names]
    dx, dy = (_li_et_al_normalized(r, weights) for r in (raw1, raw2))
    ev = land._surface_evaluator(land.params.landscape.surface_examples)
    errors = []
    for i, j in cells:
        a, b = float(surface["x"][j]), float(surface["y"][i])
        want = _plain_loss(model, state, dx, dy, a, b, ev.x, ev.y)
        errors.append(abs(float(surface["loss"][i, j]) - want) / want)
    return errors


CELLS = [(2, 2), (0, 4), (1, 3), (4, 0), (3, 1)]  # the centre, corners, in between


def test_li_et_al_surface_matches_the_reference_evaluation(tiny):
    """A ResNet with BatchNorm, one fixed raw draw normalized as Li et al. do: the kit's surface
    equals a plain eval-mode evaluation at the solution's statistics to 1e-6 (issue 32 item 2),
    and with `surface_bn: recalibrate` it is another surface (recomputed statistics)."""
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    state = _stored_statistics(model, seed=3)
    land = _memory_landscape(tiny, model, {1: state})
    assert land.params.landscape.surface_bn == "solution" and land.directions == "dense"
    g = torch.Generator().manual_seed(7)
    raw1, raw2 = ([torch.randn(p.shape, generator=g) for p in model.parameters()]
                  for _ in range(2))
    errors = _surface_against_reference(land, model, state, ls.PointRef("imp", 1), raw1, raw2,
                                        CELLS)
    assert max(errors) < 1e-6, errors
    recal = _memory_landscape(tiny, model, {1: state}, landscape={"surface_bn": "recalibrate"})
    other = _surface_against_reference(recal, model, state, ls.PointRef("imp", 1), raw1, raw2,
                                       CELLS)
    assert min(other) > 1e-3, "recomputed statistics give another surface"


def test_without_recalibration_losses_use_the_stored_statistics(tiny):
    """Issue 32 item 1: with analysis.recalibrate_bn false the kit used fresh statistics (mean 0,
    variance 1). A point's own loss, a line's ends and a surface's centre are each solution's
    own loss, evaluated as the reference does (eval mode, its running statistics)."""
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    a_state = _stored_statistics(model, seed=3)
    b_state = _stored_statistics(model, seed=4)
    g = torch.Generator().manual_seed(9)
    for name, _ in model.named_parameters():
        b_state[name] = b_state[name] + 0.1 * torch.randn(b_state[name].shape, generator=g)
    land = _memory_landscape(tiny, model, {1: a_state, 2: b_state},
                             analysis={"recalibrate_bn": False},
                             landscape={"surface_resolution": 3, "line_points": 5,
                                        "line_margin": 0.25})
    a, b = ls.PointRef("imp", 1), ls.PointRef("imp", 2)
    x, y = land.evaluator.x, land.evaluator.y
    zero = [torch.zeros_like(p) for p in model.parameters()]
    own_a = _plain_loss(model, a_state, zero, zero, 0, 0, x, y)
    own_b = _plain_loss(model, b_state, zero, zero, 0, 0, x, y)
    assert land.own_loss(a)[0] == pytest.approx(own_a, rel=1e-6)
    surface = land.surface(a)
    assert float(surface["loss"][1, 1]) == pytest.approx(own_a, rel=1e-6), \
        "a surface's centre is the solution's own loss"
    line = land.line(a, b)
    assert (line["loss_a"], line["loss_b"]) == pytest.approx((own_a, own_b), rel=1e-6)
    half = {k: (a_state[k] + b_state[k]) / 2 for k in a_state}  # statistics interpolated too
    mid = float(line["loss"][line["alpha"] == 0.5][0])
    assert mid == pytest.approx(_plain_loss(model, half, zero, zero, 0, 0, x, y), rel=1e-5)


def test_an_evaluator_without_recalibration_refuses_points_without_statistics():
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    x, y = synthetic_images((3, 32, 32), 8, "train", 0.5, seed=0)
    ev = PointEvaluator(model, (x.float() / 255 - 0.5) / 0.25, y, recalibrate_bn=False)
    with pytest.raises(ValueError, match="recalibrate_bn"):
        ev.evaluate(ev.layout.flatten(model.state_dict()))


def test_bain_dense_directions_match_his_code(tiny):
    """Bain's directions (his fork: --dir_type weights --xnorm filter --xignore biasbn) on a
    pruned LeNet-5: a direction on every weight, pruned or not, each filter scaled to the
    ticket's; the kit's dense surface equals the plain evaluation to 1e-6 (issue 32 item 3).
    The masked directions keep the ticket on its subnetwork and take larger steps there."""
    model = build_model("lenet5", 2, "synthetic_cifar10", seed=0)
    layout = ParamLayout.from_model(model)
    mask = random_prune(full_mask(model), fraction=0.9, generator=torch.Generator().manual_seed(2))
    state = {k: v * mask[k] if k in mask else v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(8)
    raw1, raw2 = ([torch.randn(p.shape, generator=g) for p in model.parameters()]
                  for _ in range(2))
    ticket = ls.PointRef("imp", 1)
    dense = _memory_landscape(tiny, model, {1: state}, {1: mask}, directions="dense")
    errors = _surface_against_reference(dense, model, state, ticket, raw1, raw2, CELLS)
    assert max(errors) < 1e-6, errors
    d_dense, _ = dense.surface_directions(ticket)
    m = layout.mask_vector(mask)
    assert bool((d_dense[m == 0] != 0).any()), "dense: the ticket moves off its subnetwork"
    masked = _memory_landscape(tiny, model, {1: state}, {1: mask}, directions="masked")
    masked.raw_directions = dense.raw_directions
    d_masked, _ = masked.surface_directions(ticket)
    assert bool((d_masked[m == 0] == 0).all())
    alive = (m == 1) & torch.cat([torch.full((s.numel(),), len(s) >= 2) for s in layout.shapes])
    step = float(d_masked[alive].norm() / d_dense[alive].norm())
    assert step > 2, f"masked steps on the survivors are larger ({step:.1f}x at 10% density)"


def test_one_raw_draw_for_every_level_as_bain(tiny):
    """Issue 32 item 4: Bain seeds every model alike, so every level shares the raw draw."""
    model = build_model("lenet5", 2, "synthetic_cifar10", seed=0)
    states = {lv: model.state_dict() for lv in (1, 2)}
    shared = _memory_landscape(tiny, model, states, draw="shared")
    per_level = _memory_landscape(tiny, model, states, draw="per_level")
    for a, b in zip(shared.raw_directions(1), shared.raw_directions(2)):
        assert torch.equal(a, b)
    assert not torch.equal(per_level.raw_directions(1)[0], per_level.raw_directions(2)[0])
    assert not torch.equal(shared.raw_directions(1)[0], shared.raw_directions(1)[1])
    with pytest.raises(ValueError, match="draw"):
        _memory_landscape(tiny, model, states, draw="every")
    p = tiny()
    assert (p.bain.directions, p.bain.draw) == ("dense", "shared"), "Bain's way by default"
    assert (p.landscape.surface_bn, p.landscape.surface_directions,
            p.landscape.surface_draw) == ("solution", "dense", "shared"), "Li et al.'s way"
    with pytest.raises(ParamsError, match="surface_bn"):
        tiny(landscape={"surface_bn": "fresh"})
    with pytest.raises(ParamsError, match="directions"):
        tiny(bain={"directions": "sparse"})


def test_surface_figures_say_how_and_on_what_they_were_made():
    """Issue 32 item 6: under every surface figure, its BatchNorm handling, directions, draw,
    examples and grid beside the paper's."""
    import matplotlib.pyplot as plt

    from lthkit import plots

    xs = torch.linspace(-1, 1, 5, dtype=torch.float64)
    surface = {"x": xs, "y": xs, "loss": 1 + xs[None, :] ** 2 + xs[:, None] ** 2, "examples": 64,
               "split": "train", "bn": "solution", "directions": "masked", "draw": "shared",
               "batchnorm": True, "span": 1.0, "math": "W"}
    fig = plots.surface_figure(surface)
    note = fig.get_supxlabel()
    assert "BN: the solution's running statistics (as Li et al.)" in note
    assert "masked" in note and "(Li et al.: dense)" in note
    assert "64 training examples, 5 x 5 grid" in note
    assert "Li et al.: the whole training set, 51 x 51" in note
    plt.close(fig)
    recal = {**surface, "bn": "recalibrate", "directions": "dense", "split": "test",
             "batchnorm": False}
    fig = plots.ticket_surfaces({"ticket": (recal, "IMP"), "random": (recal, "random")})
    note = fig.get_supxlabel()
    assert "no BatchNorm" in note and "dense, every weight moves (as Bain)" in note
    assert "64 test examples" in note and "Bain: 250 test images, 125 x 125" in note
    plt.close(fig)
    fig = plots.surface_sweep([{**surface, "examples": 16}, surface])
    assert "16, 64 training examples" in fig.get_supxlabel()
    plt.close(fig)
    assert "(Li et al.: the solution's)" in ls.surface_recipe({**surface, "bn": "recalibrate"},
                                                              "li")


# --- basin radius -------------------------------------------------------------------------------

def _quadratic(h: torch.Tensor, center: torch.Tensor, l0: float, calls: list[int] | None = None):
    def loss(points: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(points.shape[0])
        return l0 + 0.5 * ((points - center) ** 2 * h).sum(1)
    return loss


def test_radius_matches_the_quadratic():
    """L(W) = L0 + ½ (W-c)ᵀ H (W-c): along unit d the cut-off c* is crossed at sqrt(2(c*-L0)/dᵀHd)."""
    g = torch.Generator().manual_seed(6)
    p = 30
    h = torch.rand(p, generator=g, dtype=torch.float64) * 4 + 0.5
    center = torch.randn(p, generator=g, dtype=torch.float64)
    mask = (torch.arange(p) < 20).double()
    dirs = ls.random_directions(25, mask, seed=7).double()
    calls: list[int] = []
    l0 = 0.8
    cut = ls.cutoff_loss(l0, "relative", 0.5)
    res = ls.basin_radii(_quadratic(h, center, l0, calls), center, dirs, cut, start=0.01,
                         tol=1e-5, max_radius=100.0)
    expected = torch.sqrt(2 * (cut - l0) / ((dirs ** 2) * h).sum(1))
    torch.testing.assert_close(res["radii"], expected, rtol=2e-5, atol=0)
    assert res["mean"] == pytest.approx(float(expected.mean()), rel=2e-5)
    assert res["center_loss"] == pytest.approx(l0) and not bool(res["censored"].any())
    assert max(calls) == 25, "all directions evaluated together"
    assert int(res["hist_counts"].sum()) == 25


def test_radius_batched_equals_one_direction_at_a_time():
    g = torch.Generator().manual_seed(8)
    h = torch.rand(16, generator=g, dtype=torch.float64) + 0.1
    center = torch.zeros(16, dtype=torch.float64)
    dirs = ls.random_directions(6, torch.ones(16), seed=9).double()
    loss = _quadratic(h, center, 1.0)
    batched = ls.basin_radii(loss, center, dirs, 1.5, tol=1e-3)
    single = torch.cat([ls.basin_radii(loss, center, dirs[i:i + 1], 1.5, tol=1e-3)["radii"]
                        for i in range(6)])
    torch.testing.assert_close(batched["radii"], single)


def test_radius_of_several_centers_in_shared_passes_equals_each_alone():
    """basin_radii_many: two centers' directions advance in the same passes, same radii."""
    g = torch.Generator().manual_seed(12)
    h = torch.rand(16, generator=g, dtype=torch.float64) + 0.1
    c1, c2 = torch.zeros(16, dtype=torch.float64), 0.1 * torch.randn(16, generator=g).double()
    dirs = ls.random_directions(5, torch.ones(16), seed=13).double()
    calls: list[int] = []
    loss = _quadratic(h, torch.zeros(16, dtype=torch.float64), 1.0, calls)
    both = ls.basin_radii_many(loss, [c1, c2], dirs, [1.5, 1.8], tol=1e-3)
    assert max(calls[1:]) == 10, "the two centers' directions share every pass"
    for res, center, cut in zip(both, (c1, c2), (1.5, 1.8)):
        alone = ls.basin_radii(loss, center, dirs, cut, tol=1e-3)
        assert torch.equal(res["radii"], alone["radii"])
        assert res["evaluations"] == alone["evaluations"] and res["steps"] == alone["steps"]


def test_radius_with_fused_blocks_equals_the_per_direction_search(tiny_net):
    """Radii through a PointEvaluator that fuses blocks of 3 points = each direction searched
    alone, one point per pass."""
    ev, base, _ = tiny_net
    fused = PointEvaluator(ev.model, ev.x, ev.y, batch_size=32, use_vmap=True, points_per_pass=3)
    alone = PointEvaluator(ev.model, ev.x, ev.y, batch_size=32, use_vmap=False, points_per_pass=1)
    dirs = ls.random_directions(4, torch.ones(base.numel()), seed=14)
    loss0 = float(alone.evaluate(base)[0])
    kw = dict(start=2.0, max_radius=200.0, tol=0.05, center_loss=loss0)
    together = ls.basin_radii(fused.evaluate, base, dirs, 1.5 * loss0, **kw)
    single = torch.cat([ls.basin_radii(alone.evaluate, base, dirs[i:i + 1], 1.5 * loss0,
                                       **kw)["radii"] for i in range(4)])
    torch.testing.assert_close(together["radii"], single, rtol=1e-9, atol=0)


def test_points_go_to_the_evaluator_in_whole_blocks(tiny_net):
    """A chunk of points is rounded up to whole passes of the evaluator's points_per_pass."""
    ev, a, b = tiny_net
    blocks = PointEvaluator(ev.model, ev.x, ev.y, batch_size=32, points_per_pass=4)
    calls: list[int] = []

    def spy(points: torch.Tensor):
        calls.append(points.shape[0])
        return blocks.evaluate(points)

    spy.points_per_pass = 4
    assert ls.points_per_call(blocks.evaluate, 10) == 12 and ls.points_per_call(spy, 4) == 4
    assert ls.points_per_call(lambda p: p.sum(1), 10) == 10, "a plain function: as asked"
    line = ls.evaluate_line(spy, a, b, points=21, margin=0.0, chunk=10)
    assert calls == [12, 9] and len(line["loss"]) == 21


def test_radius_censored_and_empty_basins():
    h = torch.cat([torch.ones(5), torch.zeros(5)]).double()
    center = torch.zeros(10, dtype=torch.float64)
    flat = ls.random_directions(3, torch.cat([torch.zeros(5), torch.ones(5)]), seed=0).double()
    res = ls.basin_radii(_quadratic(h, center, 1.0), center, flat, 2.0, max_radius=8.0)
    assert bool(res["censored"].all()) and torch.equal(res["radii"], torch.full((3,), 8.0,
                                                                                 dtype=torch.float64))
    above = ls.basin_radii(_quadratic(h, center, 1.0), center, flat, ls.cutoff_loss(1.0, "absolute", 0.5))
    assert torch.equal(above["radii"], torch.zeros(3, dtype=torch.float64))


def test_random_directions_are_seeded_unit_and_in_the_subspace():
    mask = (torch.arange(50) % 3 == 0).float()
    d = ls.random_directions(8, mask, seed=11)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(8))
    assert bool((d[:, mask == 0] == 0).all())
    assert torch.equal(d, ls.random_directions(8, mask, seed=11))
    assert torch.equal(d[:3], ls.random_directions(3, mask, seed=11))
    assert not torch.equal(d, ls.random_directions(8, mask, seed=12))


def test_cutoff_rules():
    assert ls.cutoff_loss(0.2, "relative", 1.0) == pytest.approx(0.4)
    assert ls.cutoff_loss(0.2, "additive", 0.1) == pytest.approx(0.3)
    assert ls.cutoff_loss(0.2, "absolute", 0.7) == pytest.approx(0.7)


def test_landscape_params_are_validated(tiny):
    with pytest.raises(ParamsError, match="plane_levels"):
        tiny(landscape={"plane_levels": [0, 1]})
    with pytest.raises(ParamsError, match="radius_start"):
        tiny(landscape={"radius_start": 5.0, "radius_max": 1.0})
    assert tiny(landscape={"plane_levels": [0, 1, 2], "examples": 32}).landscape.examples == 32


def test_point_labels():
    assert ls.PointRef("proj", 3).label == "Pr_3(min(2))"
    assert ls.PointRef("rpr", 3).generic(3) == "RPr_L-1(min(L))"
    assert ls.PointRef("random_prune_oneshot", 2).label == "W_RP'(2)"
    assert ls.PointRef("imp", 4).tag == "imp04"


# --- the paper's comparisons on a run ----------------------------------------------------------

class _Bowls(ls.Landscape):
    """A Landscape without a run folder: point `imp L` sits at the bottom of an isotropic bowl
    L0 + |W - c_L|² with the loss L0 given per point, so a radius to cut-off c is sqrt(c - L0)."""

    def __init__(self, params, losses: dict[str, float]):
        super().__init__(SimpleNamespace(params=params), progress=False)
        self.losses = losses
        self.centers = {tag: torch.full((8,), 10.0 * i, dtype=torch.float64)
                        for i, tag in enumerate(losses)}

    def own_loss(self, ref):
        return self.losses[ref.tag], 1.0

    def point(self, ref):
        return self.centers[ref.tag]

    def space(self, level):
        return torch.ones(8, dtype=torch.float64)

    def _cached(self, name, config, compute):
        return compute()

    @property
    def evaluator(self):
        tags = list(self.centers)
        centers = torch.stack([self.centers[t] for t in tags])
        floor = torch.tensor([self.losses[t] for t in tags], dtype=torch.float64)

        def evaluate(points):
            nearest = torch.cdist(points.double(), centers).argmin(1)
            return floor[nearest] + ((points - centers[nearest]) ** 2).sum(1)

        return SimpleNamespace(evaluate=evaluate, recalibrate=True, has_batchnorm=False)


def test_a_pair_shares_one_cutoff_by_default_and_own_can_invert_the_comparison(tiny):
    """The projection's loss is 4x the solution's. One cut-off per pair (c = 2 x 4 = 8): radii
    sqrt(7) and 2, the solution wider. A cut-off per point (2 and 8): 1 and 2, inverted."""
    losses = {"imp03": 1.0, "proj03": 4.0}
    a, b = ls.PointRef("imp", 3), ls.PointRef("proj", 3)
    radius = {"radius_directions": 5, "radius_start": 0.01, "radius_tol": 1e-6,
              "radius_max": 50.0}
    params = tiny(landscape=radius)
    assert params.landscape.radius_reference == "pair_max"
    first, second = _Bowls(params, losses).radius_pair(a, b, 3)
    assert first["cutoff"] == second["cutoff"] == pytest.approx(8.0)
    assert first["reference"] == "pair_max" and first["reference_loss"] == 4.0
    assert first["mean"] == pytest.approx(math.sqrt(7), rel=1e-4)
    assert second["mean"] == pytest.approx(2.0, rel=1e-4)
    own = _Bowls(tiny(landscape={**radius, "radius_reference": "own"}), losses)
    first, second = own.radius_pair(a, b, 3)
    assert (first["cutoff"], second["cutoff"]) == pytest.approx((2.0, 8.0))
    assert first["mean"] == pytest.approx(1.0, rel=1e-4) and second["mean"] > first["mean"]
    assert first["reference"] == "own"
    table = ls.radius_table([(3, first, second)], ("W_min(L)", "Pr_L(min(L-1))"))
    assert not table.loc[3, "W_min(L) wider"]
    assert table.loc[3, "normalized_cutoff W_min(L)"] == pytest.approx(1.0)


def test_radius_figure_states_the_cutoff_rule(tiny):
    import matplotlib.pyplot as plt

    from lthkit import plots

    losses = {"imp03": 1.0, "proj03": 4.0}
    land = _Bowls(tiny(landscape={"radius_directions": 3, "radius_tol": 1e-3}), losses)
    pair = land.radius_pair(ls.PointRef("imp", 3), ls.PointRef("proj", 3), 3)
    fig = plots.radius_histograms(*pair)
    words = fig.get_supxlabel()
    assert "one cut-off for both" in words and "c = 8" in words
    plt.close(fig)
    own = [{**r, "reference": "own"} for r in pair]
    assert "its own cut-off" in plots.landscape.cutoff_rule_text(*own)


def test_line_figures_name_their_points_and_skip_missing_baselines(tiny):
    land = _Bowls(tiny(), {})
    land.baselines = SimpleNamespace(available=lambda: [("random_reinit", 2)])
    drawn = []
    land.line = lambda a, b: drawn.append((a, b)) or {"a": a.label, "b": b.label}
    lines = land.lines_of(["fig12", "fig29", "fig31"], [1, 2])
    assert sorted(lines) == [("fig12", 1), ("fig12", 2), ("fig29", 2)]
    assert drawn[0] == (ls.PointRef("imp", 0), ls.PointRef("imp", 1))  # W_min(L-1) to W_min(L)
    assert lines["fig29", 2] == [{"a": "Pr_2(min(1))", "b": "W_RI(2)"}]
    assert set(ls.LINE_FIGURES) <= set(ls.LINE_FIGURE_TITLES)


# --- notebooks ----------------------------------------------------------------------------------

def _store(smoke) -> tuple[RunStore, object]:
    params = load_params(smoke.params_file)
    return RunStore(params.run_dir()), params


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def _baselines(smoke) -> None:
    if (ROOT / "notebooks" / "02_baselines.ipynb").exists():
        smoke.run("02_baselines")


@pytest.mark.notebook
def test_05_basin_radius_on_smoke(smoke):
    smoke.run("01_train_imp")
    nb = smoke.run("05_basin_radius")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    store, params = _store(smoke)
    levels = params.levels(params.analysis.levels, minimum=1)
    for name, points in (("table2.csv", ("W_min(L)", "Pr_L(min(L-1))")),
                         ("table4.csv", ("W_min(L-1)", "RPr_L-1(min(L))"))):
        table = pd.read_csv(store.table_path(name), index_col="level")
        assert list(table.index) == levels, "one row per compared pair"
        assert (table["directions"] == params.landscape.radius_directions).all()
        for point in points:
            assert (table[f"mean_radius {point}"] > 0).all()
        # one cut-off per pair (the default), from the higher of the two losses
        assert (table["reference"] == "pair_max").all()
        assert (table[f"cutoff {points[0]}"] == table[f"cutoff {points[1]}"]).all()
        higher = table[[f"loss {p}" for p in points]].max(axis=1)
        assert (table[f"cutoff {points[0]}"] - 2 * higher).abs().max() < 1e-6 * higher.max()
        assert not table.filter(like="paper").columns.size, "smoke is not the paper's recipe"
    for lv in levels:
        assert store.figure_path(f"fig06_radius_level{lv:02d}.png").stat().st_size > 5_000
        assert store.figure_path(f"fig08_radius_level{lv:02d}.png").exists()
    # W_min(L-1) in level L-1 space is shared by Fig 8 at L and Fig 6 at L-1: computed once
    measured = {(f"imp{lv:02d}", lv) for lv in levels} | {(f"proj{lv:02d}", lv) for lv in levels} \
        | {(f"imp{lv - 1:02d}", lv - 1) for lv in levels} | {(f"rpr{lv:02d}", lv - 1) for lv in levels}
    cached = {(f.name.split("_")[1], int(f.name.split("_")[2][5:]))
              for f in store.path("cache", "landscape").glob("radius_*.pt")}
    assert cached == measured
    assert _images(nb) >= 2


@pytest.mark.notebook
def test_06_barriers_on_smoke(smoke):
    smoke.run("01_train_imp")
    _baselines(smoke)
    nb = smoke.run("06_barriers")
    store, params = _store(smoke)
    levels = params.levels(params.analysis.levels, minimum=1)
    barriers = pd.read_csv(store.table_path("barriers.csv"))
    assert sorted(barriers.loc[barriers["figure"] == "fig12", "level"]) == levels
    higher_end = barriers[["loss_A", "loss_B"]].max(axis=1)
    assert (barriers["barrier"] - (barriers["max_loss"] - higher_end)).abs().max() < 1e-6
    assert (barriers["barrier_linear"] >= barriers["barrier"] - 1e-6).all(), \
        "a loss above the higher end is above the straight line between the ends too"
    for lv in levels:
        assert store.figure_path(f"fig12_barrier_level{lv:02d}.png").exists()
    if (ROOT / "notebooks" / "02_baselines.ipynb").exists():
        assert {"fig09", "fig17", "fig19"} <= set(barriers["figure"])
        assert len(barriers[barriers["figure"] == "fig17"]) % 2 == 0
    assert store.figure_path("fig12_barriers.png").exists() and _images(nb) >= 2
    claims = pd.read_csv(store.table_path("claims_06_barriers.csv"), index_col=0)
    assert set(claims["claim"]) == {"R4-fig12", "R4-fig12-accuracy", "R2-fig9", "R6-fig17",
                                    "R6-fig19"}
    assert set(claims["verdict"]) == {"inconclusive"}  # one replicate: no interval


@pytest.mark.notebook
def test_07_sublevel_sets_on_smoke(smoke):
    smoke.run("01_train_imp")
    _baselines(smoke)
    nb = smoke.run("07_sublevel_sets")
    store, params = _store(smoke)
    assert store.figure_path("fig13_sublevel_set.png").stat().st_size > 10_000
    points = pd.read_csv(store.table_path("fig13_points.csv"), index_col=0)
    imp_rows = [p for p in points.index if p.startswith("W_min")]
    assert len(imp_rows) == params.imp.levels + 1, "every IMP solution is on the figure"
    c = points["sublevel_loss"].iloc[0]
    if params.landscape.sublevel_loss is None:
        assert c == pytest.approx(points.loc[imp_rows, "loss"].max()), \
            "c defaults to the largest loss of the IMP solutions"
    assert (points["loss_below_sublevel"] == (points["loss"] <= c)).all()
    assert (points["distance_from_plane"].iloc[:3].abs() < 1e-2).all(), "A, B, C lie on the plane"
    for lv in sorted({0, *params.levels(params.analysis.levels, minimum=1)}):
        assert store.figure_path(f"surface_level{lv:02d}.png").exists()
    if params.landscape.surface_sweep:
        assert list(store.root.glob("figures/surface_sweep_level*.png"))
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "BN: the solution's running statistics (as Li et al.)" in text, "Li et al.'s way"
    assert "Li et al.: the whole training set, 51 x 51" in text
    assert _images(nb) >= 2


# --- Fig 13: membership of the connected sublevel set (issue 26 item 5) ---------------------------

def test_joining_loss_is_the_minimax_path_from_the_seeds():
    from lthkit.analysis.landscape.planes import joining_loss

    # two basins (0.1) split by a wall (5.0) with a gap (1.0) in row 2
    loss = torch.tensor([[0.1, 0.2, 5.0, 0.1, 0.1],
                         [0.1, 0.2, 5.0, 0.1, 0.1],
                         [0.1, 0.2, 1.0, 0.3, 0.1]])
    reach = joining_loss(loss, [(0, 0)])
    assert reach[0, 1] == pytest.approx(0.2) and reach[0, 4] == pytest.approx(1.0), \
        "the far basin joins through the gap, not over the wall"
    assert reach[0, 2] == pytest.approx(5.0)
    both = joining_loss(loss, [(0, 0), (0, 4)])  # seeds in both basins: joined at 1.0
    assert both[0, 0] == pytest.approx(1.0) and both[1, 1] == pytest.approx(1.0)


def test_a_point_below_c_but_cut_off_is_not_in_the_connected_set():
    from lthkit.analysis.landscape import plane_table

    xs, ys = torch.arange(5.0, dtype=torch.float64), torch.arange(3.0, dtype=torch.float64)
    loss = torch.tensor([[0.1, 0.2, 5.0, 0.1, 0.1],
                         [0.1, 0.2, 5.0, 0.1, 0.1],
                         [0.1, 0.2, 5.0, 0.3, 0.1]])
    plane = {"x": xs, "y": ys, "loss": loss,
             "labels": ["W_min(0)", "W_min(1)", "W_min(2)", "W_OS(2)", "W_RI(2)"],
             "coords": torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [4.0, 1.0]]),
             "distance": torch.zeros(5), "point_loss": torch.tensor([0.1, 0.2, 0.1, 0.2, 0.1]),
             "point_acc": torch.zeros(5)}
    table = plane_table(plane, sublevel=float(torch.tensor(0.2)))  # c as the kit takes it
    assert table.loc["W_RI(2)", "loss_below_sublevel"], "its own loss is below c ..."
    assert not table.loc["W_RI(2)", "in_connected_sublevel_set"], "... behind a wall"
    assert table.loc["W_RI(2)", "joins_at"] == pytest.approx(5.0)
    assert table.loc["W_OS(2)", "in_connected_sublevel_set"]
    assert table.loc["W_min(0)", "spanning_joined_at"] == pytest.approx(0.2)
    assert list(table["spans_plane"]) == [True, True, True, False, False]

    from lthkit.verdicts import paper_claims as pc
    claims = pc.by_key()
    assert claims["R5-fig13-RI"].extract(table) == {2: pytest.approx((5.0, 0.2))}
    assert claims["R5-fig13-IMP"].extract(table) == {2: pytest.approx((0.2, 0.2))}
    assert claims["R5-fig13-IMP"].claim.expect == "at_most"
