"""The Hessian engine: products against the dense Hessian, Lanczos against eigh and pyhessian,
trace and density against exact values and pyhessian, V'(k), the cache, notebooks 04 and 08."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

matplotlib.use("Agg")

import lthkit.analysis.hessian as hs  # noqa: E402
from lthkit import plots  # noqa: E402
from lthkit.config.base import ParamsError
from lthkit.config.params import load_params, params_from_dict  # noqa: E402
from lthkit.nets.evaluator import PointEvaluator  # noqa: E402
from lthkit.nets.models import build_model  # noqa: E402
from lthkit.nets.points import ParamLayout
from lthkit.nets.pruning import count_alive, full_mask, magnitude_prune, masked_state  # noqa: E402
from lthkit.store.files import save_json, save_tensors  # noqa: E402
from lthkit.store.layout import RunStore
from lthkit.train.context import open_run  # noqa: E402
from lthkit.train.imp import ImpResults  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(_deterministic_threads):
    """These models are tiny: a second thread only adds synchronization (and suffers most when
    the machine is shared)."""
    torch.set_num_threads(1)
    yield


# --- a model small enough for the dense Hessian -------------------------------------------------

class Tiny(nn.Module):
    """Conv + BatchNorm + linear: 103 parameters, so the full Hessian is cheap."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


@pytest.fixture
def small():
    """(model, point, buffers, x, y, mask vector): a tiny trained-looking setting."""
    torch.manual_seed(0)
    model = Tiny()
    x, y = torch.randn(40, 3, 6, 6), torch.randint(0, 4, (40,))
    layout = ParamLayout.from_model(model)
    point = layout.flatten(model.state_dict())
    buffers = PointEvaluator(model, x, y, batch_size=16).recalibrated_buffers(point)
    g = torch.Generator().manual_seed(1)
    mask = {"conv.weight": torch.rand(3, 3, 3, 3, generator=g) > 0.4,
            "fc.weight": torch.rand(4, 3, generator=g) > 0.3}
    return model, point, buffers, x, y, layout.mask_vector(mask)


def reference_hessian(model, point, buffers, x, y, mask=None) -> torch.Tensor:
    """Dense Hessian of the mean loss over all of (x, y) in one pass, float64, by
    torch.autograd.functional.hessian, masked on both sides: the independent reference."""
    layout = ParamLayout.from_model(model)
    model.eval()
    bufs = {n: b.double() if b.is_floating_point() else b for n, b in buffers.items()}

    def loss(w):
        logits = functional_call(model, {**layout.unflatten(w), **bufs}, (x.double(),))
        return F.cross_entropy(logits, y)

    h = torch.autograd.functional.hessian(loss, point.double())
    if mask is not None:
        m = mask.double()
        h = h * m[:, None] * m[None, :]
    return h


@pytest.mark.parametrize("mode", ["double_backward", "forward_over_reverse"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_hvp_equals_dense_hessian_times_v(small, mode, masked):
    model, point, buffers, x, y, mask = small
    m = mask if masked else None
    h = reference_hessian(model, point, buffers, x, y, m)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=m, batch_size=16,
                                mode=mode, dtype=dtype)  # chunks of 16, 16 and 8: weighted
        for seed in range(3):
            v = torch.randn(op.size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
            hv = op(v).double()
            assert torch.linalg.norm(hv - h @ v.double()) <= tol * torch.linalg.norm(h @ v.double())
        assert op.n_hvp == 3
    if masked:  # nothing leaks out of the subspace, whatever v holds there
        assert torch.all(op(torch.randn(op.size))[mask == 0] == 0)


def test_reused_graph_gives_the_same_products(small):
    model, point, buffers, x, y, mask = small
    kw = dict(buffers=buffers, mask=mask, batch_size=16, dtype=torch.float64)
    plain = hs.HessianOperator(model, point, x, y, **kw)
    reused = hs.HessianOperator(model, point, x, y, reuse_graph=True, **kw)
    for seed in range(2):
        v = torch.randn(plain.size, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        torch.testing.assert_close(reused(v), plain(v), rtol=1e-12, atol=1e-14)


def test_operator_loss_and_dense_match_the_reference(small):
    model, point, buffers, x, y, mask = small
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=mask, batch_size=16,
                            dtype=torch.float64)
    torch.testing.assert_close(op.dense(), reference_hessian(model, point, buffers, x, y, mask))
    model.eval()
    with torch.no_grad():
        ref = F.cross_entropy(functional_call(model, {**ParamLayout.from_model(model).unflatten(point),
                                                      **buffers}, (x,)), y)
    assert op.loss() == pytest.approx(float(ref), rel=1e-6)
    assert op.dim == int(mask.sum())


@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_lanczos_top_k_equals_dense_eigh(small, masked):
    model, point, buffers, x, y, mask = small
    m = mask if masked else None
    h = reference_hessian(model, point, buffers, x, y, m)
    if masked:  # the spectrum in the subspace: eigenvalues of the alive block
        alive = mask.bool()
        exact = torch.linalg.eigvalsh(h[alive][:, alive]).flip(0)
    else:
        exact = torch.linalg.eigvalsh(h).flip(0)
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=m, batch_size=16,
                            dtype=torch.float64)
    res = hs.lanczos_topk(op, 10, tol=1e-8, max_iterations=200, seed=3, return_vectors=True)
    torch.testing.assert_close(res.eigenvalues, exact[:10], rtol=1e-7, atol=1e-9)
    assert res.converged and res.n_hvp == res.iterations < op.dim
    assert res.basis_device == "cpu" and res.dim == op.dim
    # the reported residual bounds are the true residuals ‖Hv − λv‖ (up to rounding)
    vecs = res.vectors.double()
    true = torch.stack([torch.linalg.norm(h @ v - lam * v) for v, lam in zip(vecs, res.eigenvalues)])
    assert float(true.max()) <= 1e-8 * float(exact[0]) + 1e-12
    assert res.max_residual <= 1e-8 * float(res.eigenvalues[0])
    if masked:
        assert torch.all(vecs[:, mask == 0] == 0)
    # fp32 products with the default tolerance: the top values to well within 0.1%
    op32 = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=m, batch_size=16)
    res32 = hs.lanczos_topk(op32, 5, tol=1e-3, seed=3)
    assert res32.relative_residual <= 1e-3
    torch.testing.assert_close(res32.eigenvalues, exact[:5], rtol=1e-3, atol=0)


def test_lanczos_finds_repeated_eigenvalues_and_exhausts_small_spaces():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    values = torch.tensor([9.0, 9.0, 9.0, 4.0, 2.5, 2.5] + [0.1 * i for i in range(24)],
                          dtype=torch.float64)
    op = hs.DenseOperator(q @ torch.diag(values) @ q.T)
    res = hs.lanczos_topk(op, 6, tol=1e-10, max_iterations=30)
    torch.testing.assert_close(res.eigenvalues, values[:6], rtol=1e-8, atol=1e-10)
    # a subspace of 5 coordinates: all its eigenvalues, exactly, after 5 products
    mask = torch.zeros(30, dtype=torch.float64)
    mask[[1, 4, 7, 20, 25]] = 1
    a = torch.randn(30, 30, generator=g, dtype=torch.float64)
    a = a + a.T
    op = hs.DenseOperator(a, mask=mask)
    res = hs.lanczos_topk(op, 8, max_iterations=50)
    block = a[mask.bool()][:, mask.bool()]
    torch.testing.assert_close(res.eigenvalues, torch.linalg.eigvalsh(block).flip(0))
    assert res.n_hvp == 5 and res.converged and len(res.eigenvalues) == 5


def test_lanczos_stops_on_residuals_and_respects_the_budget():
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(400, 400, generator=g, dtype=torch.float64))
    values = torch.cat([torch.logspace(2, 0, 20, dtype=torch.float64),
                        torch.linspace(0.5, -0.2, 380, dtype=torch.float64)])
    op = hs.DenseOperator((q * values) @ q.T)
    loose = hs.lanczos_topk(op, 10, tol=1e-2, max_iterations=300)
    tight = hs.lanczos_topk(op, 10, tol=1e-8, max_iterations=300)
    assert loose.converged and tight.converged and loose.n_hvp < tight.n_hvp
    assert loose.relative_residual <= 1e-2 and tight.relative_residual <= 1e-8
    # the eigenvalue error is below the residual (it is ~residual^2 / gap)
    assert float((loose.eigenvalues - values[:10]).abs().max()) <= loose.max_residual
    # tol relative to each eigenvalue (the default) against relative to the largest one
    each = hs.lanczos_topk(op, 20, tol=1e-3, max_iterations=300)
    largest = hs.lanczos_topk(op, 20, tol=1e-3, relative_to="largest", max_iterations=300)
    assert float(((each.eigenvalues - values[:20]) / values[:20]).abs().max()) <= 1e-3
    assert (each.residuals <= 1e-3 * each.eigenvalues).all()
    assert largest.n_hvp <= each.n_hvp and largest.max_residual <= 1e-3 * float(values[0])
    short = hs.lanczos_topk(op, 10, tol=1e-12, max_iterations=12)
    assert short.n_hvp == 12 and not short.converged and short.relative_residual > 1e-12
    cpu = hs.lanczos_topk(op, 10, tol=1e-8, max_iterations=300, basis_device="cpu")
    torch.testing.assert_close(cpu.eigenvalues, tight.eigenvalues)


def test_log_volume_sums_logs_of_the_positive_top_k_only():
    lam = torch.tensor([-1.0, 8.0, 0.0, 2.0, math.e, -3.0], dtype=torch.float64)
    assert hs.log_volume(lam, 2) == pytest.approx(math.log(8.0) + 1.0)
    assert hs.log_volume(lam, 4) == pytest.approx(math.log(8.0) + 1.0 + math.log(2.0))
    assert hs.log_volume(lam) == pytest.approx(math.log(8.0) + 1.0 + math.log(2.0))
    assert hs.log_volume([-1.0, -2.0], 2) == 0.0


# --- pyhessian as the reference ---------------------------------------------------------------

@pytest.fixture
def resnet_point():
    """A width-1 ResNet-20 (1229 parameters) a few SGD steps from init, with its data."""
    torch.manual_seed(0)
    model = build_model("resnet20", 1, "synthetic_cifar10", seed=0)
    x, y = torch.randn(24, 3, 32, 32), torch.randint(0, 10, (24,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    layout = ParamLayout.from_model(model)
    point = layout.flatten(model.state_dict())
    buffers = PointEvaluator(model, x, y, batch_size=12).recalibrated_buffers(point)
    return model, point, buffers, x, y


def test_top_eigenvalues_agree_with_pyhessian(resnet_point):
    model, point, buffers, x, y = resnet_point
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    ours = hs.lanczos_topk(hs.HessianOperator(model, point, x, y, buffers=buffers, batch_size=12),
                           3, tol=2e-5, max_iterations=200, seed=0)
    ref = hs.pyhessian_topk(model, point, x, y, 3, buffers=buffers, batch_size=12, seed=0,
                            max_iter=300, tol=1e-4)
    torch.testing.assert_close(ours.eigenvalues, ref["eigenvalues"], rtol=3e-3, atol=0)
    assert ref["n_hvp"] > ours.n_hvp and sum(ref["per_eigenvalue"]) == ref["n_hvp"]
    assert len(ref["per_eigenvalue"]) == 3
    # the caller's model is left alone: same weights, same mode, no gradients
    assert model.training and all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())
    # seeded: the same call gives the same numbers
    a, b = (hs.pyhessian_topk(model, point, x, y, 1, buffers=buffers, batch_size=12, seed=0,
                              max_iter=3) for _ in range(2))
    assert a["n_hvp"] == 3 and torch.equal(a["eigenvalues"], b["eigenvalues"])


def test_trace_and_density_against_exact_values_and_pyhessian(small):
    model, point, buffers, x, y, mask = small
    for m in (None, mask):
        h = reference_hessian(model, point, buffers, x, y, m)
        op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=m, batch_size=40,
                                dtype=torch.float64)
        t = hs.hutchinson_trace(op, 300, seed=0)
        assert abs(t["trace"] - float(torch.trace(h))) <= 5 * t["std_error"]
        assert t["n_hvp"] == 300 and op.n_hvp == 300
        # SLQ with as many steps as the space has dimensions is exact: nodes are eigenvalues,
        # weights sum to one, and the largest node is the largest eigenvalue
        d = hs.slq_density(op, 120, runs=2, seed=0)
        lam = torch.linalg.eigvalsh(h[op.mask.bool()][:, op.mask.bool()] if m is not None else h)
        assert torch.allclose(d["weights"].sum(1), torch.ones(2, dtype=torch.float64))
        top = torch.nan_to_num(d["nodes"], nan=-1e9).max(1).values
        torch.testing.assert_close(top, lam[-1].expand(2), rtol=1e-8, atol=1e-10)
    # pyhessian's trace and density on the full space (no mask) estimate the same quantities
    h = reference_hessian(model, point, buffers, x, y)
    ref_t = hs.pyhessian_trace(model, point, x, y, buffers=buffers, batch_size=40, seed=0,
                               max_iter=300, tol=1e-9)
    samples = ref_t["samples"]
    assert abs(ref_t["trace"] - float(torch.trace(h))) <= 5 * float(samples.std()) / math.sqrt(
        len(samples))
    ref_d = hs.pyhessian_density(model, point, x, y, buffers=buffers, batch_size=40, seed=0,
                                 iterations=40, runs=1)
    ours = hs.slq_density(hs.HessianOperator(model, point, x, y, buffers=buffers, batch_size=40),
                          40, runs=1, seed=0)
    lam_max = float(torch.linalg.eigvalsh(h)[-1])
    assert float(ref_d["nodes"].max()) == pytest.approx(lam_max, rel=1e-3)
    assert float(torch.nan_to_num(ours["nodes"], nan=-1e9).max()) == pytest.approx(lam_max, rel=1e-3)
    assert float(ref_d["weights"].sum()) == pytest.approx(1.0, abs=1e-4)
    assert not hasattr(torch, "eig") or "removed" in (torch.eig.__doc__ or "removed")
    grid, dens = hs.density_curve(ours["nodes"], ours["weights"])
    assert dens.shape == grid.shape and float(torch.trapezoid(dens, grid)) == pytest.approx(1, abs=0.02)


# --- the analysis of a run: points, cache, tables -------------------------------------------

def _fake_run(tiny, **hessian):
    """A run folder with 3 IMP levels whose 'solutions' are random points (no training)."""
    settings = {"k": 4, "ks_fig22": [2, 4], "max_iterations": 10, "subset_size": 16,
                "trace_samples": 2, "density_iterations": 4, **hessian}
    params = tiny(hessian=settings)
    ctx = open_run(params, create=True)
    model = ctx.new_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    mask = full_mask(model)
    for level in range(params.imp.levels + 1):
        if level:
            mask = magnitude_prune(state, mask, fraction=params.imp.prune_fraction)
            state = masked_state({k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
                                  for k, v in state.items()}, mask)
        folder = ctx.store.imp_dir(level)
        save_tensors(folder / "mask.pt", mask)
        save_tensors(folder / "final.pt", state)
        save_json(folder / "metrics.json", {"final": {}})
    return ctx


def test_points_are_the_paper_s_points(tiny):
    ctx = _fake_run(tiny)
    imp = ImpResults(ctx.store)
    state, mask = hs.imp_projection(imp, 2).load()
    assert count_alive(mask) == count_alive(imp.mask(2))
    torch.testing.assert_close(state["fc.weight"], imp.final(1)["fc.weight"] * imp.mask(2)["fc.weight"])
    pt = hs.imp_reverse_projection(imp, 2)
    state, mask = pt.load()
    assert pt.space == "imp_m01" and pt.name == "imp_L02_min"
    assert count_alive(mask) == count_alive(imp.mask(1))
    torch.testing.assert_close(state["fc.weight"], imp.final(2)["fc.weight"])
    state, mask = hs.band_projection(imp, 2, 0.2).load()
    usual = imp.mask(2)
    assert count_alive(mask) == count_alive(usual)
    assert any(not torch.equal(mask[n], usual[n]) for n in mask)
    names = [(p.name, p.space) for p in hs.volume_points(imp, [1, 2])]
    assert len(names) == len(set(names)) == 7  # W_min(1) in level 1 space is shared


def test_spectrum_is_cached_and_not_recomputed(tiny, monkeypatch):
    ctx = _fake_run(tiny)
    imp = ImpResults(ctx.store)
    analysis = hs.HessianAnalysis(ctx, progress=False)
    first = analysis.spectrum(hs.imp_solution(imp, 1))
    assert first["n_hvp"] <= 10 and len(first["eigenvalues"]) == 4
    assert math.isfinite(first["loss"]) and first["space"] == "imp_m01"
    files = list((ctx.store.root / "cache" / "hessian").glob("*.pt"))
    assert len(files) == 1 and "imp_L01_min" in files[0].name and "n16_s0" in files[0].name

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached spectrum")

    monkeypatch.setattr(hs.analysis, "topk", boom)
    again = hs.HessianAnalysis(ctx, progress=False).spectrum(hs.imp_solution(imp, 1))
    torch.testing.assert_close(again["eigenvalues"], first["eigenvalues"])
    # another space, or another k, is another entry
    with pytest.raises(AssertionError, match="recomputed"):
        analysis.spectrum(hs.imp_reverse_projection(imp, 1))
    other = hs.HessianAnalysis(ctx.__class__(params=ctx.params.model_copy(
        update={"hessian": ctx.params.hessian.model_copy(update={"k": 3})}), store=ctx.store,
        device=ctx.device), progress=False)
    with pytest.raises(AssertionError, match="recomputed"):
        other.spectrum(hs.imp_solution(imp, 1))


def test_tables_trace_and_density_of_a_run(tiny):
    ctx = _fake_run(tiny)
    imp = ImpResults(ctx.store)
    analysis = hs.HessianAnalysis(ctx, progress=False)
    report = analysis.report(hs.volume_points(imp, [1, 2]))
    assert len(report) == 7 and (report["n_hvp"] <= 10).all()
    t1, t3 = hs.volume_tables(analysis, imp, [1, 2])
    assert list(t1.index) == [1, 2] and "paper W_min(L)" not in t1  # not the paper's recipe
    # Table III's W_min(L-1) is Table I's W_min of the level before
    assert t3.loc[2, "V'(4) W_min(L-1)"] == t1.loc[1, "V'(4) W_min(L)"]
    flip = hs.flip_table(analysis, imp, [1, 2])
    assert flip.shape[0] == 8
    by_k = hs.volume_by_k(analysis, imp, [1, 2], [2, 4])
    assert by_k.loc[1, "W_min(L) k=4"] == t1.loc[1, "V'(4) W_min(L)"]
    traces = hs.trace_table(analysis, {0: hs.imp_solution(imp, 0), 2: hs.imp_solution(imp, 2)})
    assert traces["trace"].map(math.isfinite).all()
    grid, dens = analysis.density_curve(hs.imp_solution(imp, 2))
    assert torch.isfinite(dens).all()
    for fig in (plots.eigenvalue_comparison(analysis.eigenvalues(hs.imp_solution(imp, 1),
                                                                 hs.imp_projection(imp, 1)), 4),
                plots.volume_by_level(t1, ["V'(4) W_min(L)"], ["W_min"]),
                plots.flip_figure(flip.xs("0->1", level="pair")),
                plots.fig22_volume_k(by_k, [2, 4]), plots.trace_figure(traces),
                plots.density_figure({"level 2": (grid, dens)})):
        assert fig.axes
        matplotlib.pyplot.close(fig)


def test_pruning_choice_points_follow_the_available_baselines(tiny):
    ctx = _fake_run(tiny)
    imp = ImpResults(ctx.store)

    class Baselines:  # stands for lthkit.train.baselines.BaselineResults: one solution, one_shot at 2
        def available(self):
            return [("one_shot", 2)]

        def final(self, kind, level):
            return imp.final(level)

        def mask(self, kind, level):
            return imp.mask(level)

    base = Baselines()
    assert hs.baseline_levels(base, "one_shot", [1, 2]) == [2]
    assert hs.baseline_levels(base, "fine_tune", [1, 2]) == []
    points = hs.choice_points(imp, base, [1, 2], ["one_shot", "fine_tune"], [2], 0.2)
    assert list(points[1]) == ["W_min(L)", "Pr_L(min(L-1))"]
    assert list(points[2]) == ["W_min(L)", "Pr_L(min(L-1))", "band Pr_L(min(L-1))", "W_OS(L)"]
    assert points[2]["W_OS(L)"].space == "one_shot_m02"
    volumes, losses = hs.choices_tables(hs.HessianAnalysis(ctx, progress=False), points)
    assert losses.shape == (2, 4) and set(losses.columns) <= set(volumes.columns)
    assert math.isnan(volumes.loc[1, "W_OS(L)"])
    assert volumes.loc[2, list(losses.columns)].map(math.isfinite).all()
    assert {f"bound {n}" for n in losses.columns} <= set(volumes.columns)  # V'(k)'s trust


def test_paper_preset_and_published_values():
    assert hs.paper_preset(load_params("params/resnet20_paper.yaml")) == "resnet20"
    assert hs.paper_preset(load_params("params/smoke.yaml")) is None
    assert hs.paper_preset(load_params("params/quick.yaml")) is None  # 30 epochs
    t1, t3 = hs.PUBLISHED["resnet20"]["table1"], hs.PUBLISHED["resnet20"]["table3"]
    assert len(t1) == len(t3) == 10
    # Table III's W_min(L-1) column is Table I's W_min(L) one level down
    assert all(t3[L][1] == pytest.approx(t1[L - 1][1]) for L in range(2, 11))
    # and the published direction of both comparisons holds at every level
    assert all(pr > mn for pr, mn in t1.values()) and all(r > m for r, m in t3.values())


def test_hessian_parameters_are_validated():
    with pytest.raises(ParamsError, match="hessian.ks_fig22"):
        params_from_dict({"hessian": {"k": 10}})
    with pytest.raises(ParamsError, match="hessian.dtype"):
        params_from_dict({"hessian": {"dtype": "bfloat16"}})
    p = params_from_dict({"hessian": {"k": 10, "ks_fig22": [5, 10], "subset_size": 100}})
    assert p.hessian.subset_size == 100 and p.hessian.batch_size is None


# --- notebooks ------------------------------------------------------------------------------

def _artifacts(store: RunStore, names: list[str]) -> None:
    for name in names:
        path = store.root / name
        assert path.exists() and path.stat().st_size > 0, f"{name} was not written"


@pytest.mark.notebook
def test_04_hessian_volume_on_smoke(smoke):
    smoke.run("01_train_imp")
    nb = smoke.run("04_hessian_volume")
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    levels = params.levels(params.analysis.levels, minimum=1)
    _artifacts(store, [f"figures/fig05_eigenvalues_level{lv:02d}.png" for lv in levels]
               + [f"figures/fig07_eigenvalues_level{lv:02d}.png" for lv in levels]
               + ["figures/fig22_volume_k.png", "figures/hessian_density_by_level.png",
                  "figures/hessian_trace_by_level.png", "tables/table1.csv", "tables/table3.csv",
                  "tables/table5.csv", "tables/fig22_volume_k.csv",
                  "tables/hessian_spectra_report.csv"])
    t1 = pd.read_csv(store.root / "tables" / "table1.csv", index_col="level")
    assert list(t1.index) == levels
    k = params.hessian.k
    assert t1[[f"V'({k}) W_min(L)", f"V'({k}) Pr_L(min(L-1))"]].map(math.isfinite).all().all()
    report = pd.read_csv(store.root / "tables" / "hessian_spectra_report.csv")
    assert (report["n_hvp"] <= params.hessian.max_iterations).all()
    assert report["lambda_max"].map(math.isfinite).all()
    cached = [c.name for c in (store.root / "cache" / "hessian").glob("top*.pt")]
    for point, space in zip(report["point"], report["space"]):  # one cache entry per spectrum
        # (other notebooks sharing the smoke run may have cached spectra of their own points)
        assert sum(f"__{point}__in_{space}__" in c for c in cached) == 1, (point, space)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4


@pytest.mark.notebook
def test_08_pruning_choices_on_smoke(smoke):
    pytest.importorskip("lthkit.train.baselines")
    smoke.run("01_train_imp")
    smoke.run("02_baselines")
    smoke.run("08_pruning_choices")
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    levels = [lv for lv in params.levels(params.baselines.levels, minimum=1)
              if lv in params.levels(params.analysis.levels, minimum=1)]
    names = [f"figures/fig{n}_eigenvalues_level{lv:02d}.png"
             for n in (10, 11, 18, 20, 21) for lv in levels]
    names += [f"figures/fig16_eigenvalues_level{lv:02d}.png"
              for lv in params.levels(params.hessian.band_levels, minimum=1)]
    _artifacts(store, names + ["tables/pruning_choices_volume.csv"])
    table = pd.read_csv(store.root / "tables" / "pruning_choices_volume.csv", index_col="level")
    volumes = table[[c for c in table.columns if c.startswith("V'(")]]
    assert volumes.loc[levels].map(math.isfinite).all().all()


# --- block products, block Lanczos, eigsh (issue 14) --------------------------------------------

@pytest.mark.parametrize("mode,batched", [("double_backward", False), ("double_backward", True),
                                          ("forward_over_reverse", None)])
@pytest.mark.parametrize("reuse", [False, True], ids=["fresh", "kept"])
def test_block_products_equal_the_dense_hessian(small, mode, batched, reuse):
    model, point, buffers, x, y, mask = small
    h = reference_hessian(model, point, buffers, x, y, mask)
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=mask, batch_size=16,
                            mode=mode, dtype=torch.float64, reuse_graph=reuse,
                            batched_backward=batched)
    v = torch.randn(5, op.size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hv = op.matmat(v)
    torch.testing.assert_close(hv, (h @ v.T).T, rtol=1e-10, atol=1e-12)
    assert op.n_hvp == 5 and op.n_passes == 1
    assert torch.all(hv[:, mask == 0] == 0)  # nothing leaks into the pruned coordinates


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_block_lanczos_equals_the_exact_masked_hessian(small, block_size):
    model, point, buffers, x, y, mask = small
    h = reference_hessian(model, point, buffers, x, y, mask)
    alive = mask.bool()
    exact = torch.linalg.eigvalsh(h[alive][:, alive]).flip(0)
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=mask, batch_size=16,
                            dtype=torch.float64)
    res = hs.block_lanczos_topk(op, 10, block_size=block_size, tol=1e-8, max_iterations=200,
                                seed=2, return_vectors=True)
    assert res.converged and res.method == "block_lanczos"
    torch.testing.assert_close(res.eigenvalues, exact[:10], rtol=1e-5, atol=0)
    lam = exact[:10]
    assert hs.log_volume(res.eigenvalues, 10, warn=False) == pytest.approx(
        float(torch.log(lam[lam > 1e-3 * lam[0]]).sum()), abs=1e-4)
    assert res.n_hvp == op.n_hvp and res.n_passes == res.n_blocks == op.n_passes
    assert res.n_blocks == -(-res.n_hvp // res.block_size)
    # the masked subspace is respected: Ritz vectors are zero on pruned coordinates, and the
    # reported residuals are the true ones
    vecs = res.vectors.double()
    assert torch.all(vecs[:, mask == 0] == 0)
    true = torch.stack([torch.linalg.norm(h @ v - lam * v)
                        for v, lam in zip(vecs, res.eigenvalues)])
    torch.testing.assert_close(true, res.residuals, rtol=1e-3, atol=1e-10)
    # fp32 products at the default tolerance: the top 5 within 1e-5 relative
    op32 = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=mask, batch_size=16)
    res32 = hs.block_lanczos_topk(op32, 5, block_size=block_size, tol=1e-3, seed=2)
    torch.testing.assert_close(res32.eigenvalues, exact[:5], rtol=1e-5, atol=0)


def test_block_lanczos_finds_repeated_eigenvalues_and_exhausts_small_spaces():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    values = torch.tensor([9.0, 9.0, 9.0, 4.0, 2.5, 2.5] + [0.07 * i for i in range(34)],
                          dtype=torch.float64)
    op = hs.DenseOperator(q @ torch.diag(values) @ q.T)
    res = hs.block_lanczos_topk(op, 6, block_size=2, tol=1e-10, max_iterations=40)
    torch.testing.assert_close(res.eigenvalues, values[:6], rtol=1e-8, atol=1e-10)
    # rank 3: the block runs into an invariant subspace and goes on from fresh directions
    top3 = torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64)
    low = hs.DenseOperator((q[:, :3] * top3) @ q[:, :3].T)
    res = hs.block_lanczos_topk(low, 5, block_size=4, tol=1e-8, max_iterations=40)
    torch.testing.assert_close(res.eigenvalues[:3], torch.tensor([5.0, 3.0, 1.0],
                                                                 dtype=torch.float64))
    assert res.eigenvalues[3:].abs().max() < 1e-10
    mask = torch.zeros(40, dtype=torch.float64)
    mask[[1, 4, 7, 20, 25]] = 1
    a = torch.randn(40, 40, generator=g, dtype=torch.float64)
    res = hs.block_lanczos_topk(hs.DenseOperator(a + a.T, mask=mask), 8, block_size=3,
                                max_iterations=50)
    block = (a + a.T)[mask.bool()][:, mask.bool()]
    torch.testing.assert_close(res.eigenvalues, torch.linalg.eigvalsh(block).flip(0))
    assert res.status == "exhausted" and res.n_hvp == 5 and res.n_blocks == 2


def test_eigsh_and_the_method_choice(small):
    model, point, buffers, x, y, mask = small
    h = reference_hessian(model, point, buffers, x, y, mask)
    exact = torch.linalg.eigvalsh(h[mask.bool()][:, mask.bool()]).flip(0)
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=mask, batch_size=16,
                            dtype=torch.float64)
    res = hs.eigsh_topk(op, 5, tol=1e-10, return_vectors=True)
    torch.testing.assert_close(res.eigenvalues, exact[:5], rtol=1e-8, atol=0)
    assert res.converged and float(res.residuals.max()) <= 1e-8 * float(exact[0])
    assert torch.all(res.vectors[:, mask == 0] == 0)
    assert hs.resolve_method("auto", torch.device("cpu")) == "block_lanczos"
    assert hs.resolve_method("auto", torch.device("cuda")) == "lanczos"
    assert hs.resolve_method("eigsh", torch.device("cpu")) == "eigsh"
    assert hs.topk(op, 3, method="lanczos", tol=1e-8).method == "lanczos"


def test_eigsh_spends_at_most_its_products_and_returns_only_converged_values():
    """ARPACK's maxiter counts restarts (up to ncv - k products each): max_iterations=60 passed
    as maxiter let eigsh run about a thousand products (issue 35 item 3). The cap is in products,
    and what comes back without convergence is the values that converged, exact."""
    g = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(400, 400, generator=g, dtype=torch.float64))
    values = torch.cat([torch.linspace(1.0, 0.99, 30, dtype=torch.float64),
                        0.98 * torch.rand(370, generator=g, dtype=torch.float64)])
    op = hs.DenseOperator((q * values) @ q.T)
    exact = values.sort(descending=True).values
    for cap in (30, 60, 200):
        res = hs.eigsh_topk(op, 4, max_iterations=cap, tol=1e-10, check=False)
        assert res.n_hvp <= cap, (cap, res.n_hvp)
        if not res.converged:
            assert res.status == "budget" and len(res.eigenvalues) < 4
        for value in res.eigenvalues:  # each one converged: an eigenvalue of the operator
            assert float((exact - value).abs().min()) < 1e-8


# --- guarantees (issue 17): V'(k) threshold, dtype floor, flags, the basis' memory --------------

def test_log_volume_leaves_out_values_that_are_zero_to_rounding():
    """A rank-50 operator: V'(100) must not sum the logs of the 50 rounding-noise values."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(300, 300, generator=g, dtype=torch.float64))
    values = torch.logspace(2, 0, 50, dtype=torch.float64)
    op = hs.DenseOperator(((q[:, :50] * values) @ q[:, :50].T).float())
    res = hs.lanczos_topk(op, 100, tol=1e-3, max_iterations=300)
    assert int((res.eigenvalues[50:] != 0).sum()) > 0  # noise there, not zeros
    with pytest.warns(hs.VolumeWarning, match="only 50 of the top 100"):
        v = hs.log_volume(res.eigenvalues, 100)
    assert v == pytest.approx(float(torch.log(values).sum()), abs=1e-3)
    assert hs.volume_count(res.eigenvalues, 100) == (pytest.approx(v), 50, 100)
    # a higher threshold leaves out more, and says so
    _, entered, _ = hs.volume_count(res.eigenvalues, 100, threshold=0.05)
    assert entered == int((values > 0.05 * values[0]).sum())


def test_tolerances_finer_than_the_dtype_are_refused_or_flagged():
    g = torch.Generator().manual_seed(4)
    q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    values = torch.cat([torch.logspace(0, -2.5, 30, dtype=torch.float64),
                        torch.zeros(170, dtype=torch.float64)])
    a64 = (q * values) @ q.T
    op = hs.DenseOperator(a64.float())
    for solve in (hs.lanczos_topk, hs.block_lanczos_topk):
        with pytest.raises(ValueError, match="finer than float32"):
            solve(op, 10, tol=1e-12, max_iterations=13)
    # float64 products may ask for it
    assert hs.lanczos_topk(hs.DenseOperator(a64), 10, tol=1e-12, max_iterations=200).converged
    # tol 1e-3 relative to each eigenvalue: the ones below ~1.2e-2 lambda_max cannot be certified
    # in fp32; the spectrum is reported as limited by the dtype, not as converged
    for solve in (hs.lanczos_topk, hs.block_lanczos_topk):
        res = solve(op, 25, tol=1e-3, max_iterations=200)
        assert res.status == "dtype_limited" and not res.converged
        assert res.relative_residual > 1e-3
        assert float(((res.eigenvalues - values[:25]) / values[:25]).abs().max()) < 1e-3
    # relative to the largest only, the same tolerance is within reach
    assert hs.lanczos_topk(op, 25, tol=1e-3, relative_to="largest").status == "converged"


def test_the_basis_holds_alive_coordinates_only_and_results_are_unchanged():
    g = torch.Generator().manual_seed(5)
    size, alive = 4000, 40
    idx = torch.randperm(size, generator=g)[:alive]
    mask = torch.zeros(size, dtype=torch.float64)
    mask[idx] = 1
    a = torch.randn(alive, alive, generator=g, dtype=torch.float64)
    block = a @ a.T / alive
    full = torch.zeros(size, size, dtype=torch.float64)
    full[idx[:, None], idx[None, :]] = block
    # the pruned rows and columns hold noise of their own, which only the mask keeps out
    noise = torch.randn(size, size, generator=g, dtype=torch.float64)
    noise[idx[:, None], idx[None, :]] = 0
    full += noise + noise.T
    exact = torch.linalg.eigvalsh(block).flip(0)
    for solve, kw in ((hs.lanczos_topk, {}), (hs.block_lanczos_topk, {"block_size": 4})):
        res = solve(hs.DenseOperator(full, mask=mask), 10, tol=1e-10, max_iterations=40,
                    return_vectors=True, **kw)
        torch.testing.assert_close(res.eigenvalues, exact[:10], rtol=1e-9, atol=1e-12)
        blocks = -(-res.iterations // 32)
        assert res.basis_numel == blocks * 32 * alive  # not x size: 100x less here
        assert res.basis_numel < res.iterations * size / 50
        assert res.vectors.shape == (10, size) and torch.all(res.vectors[:, mask == 0] == 0)
        # the same numbers as on the alive block itself
        plain = solve(hs.DenseOperator(block), 10, tol=1e-10, max_iterations=40, **kw)
        torch.testing.assert_close(res.eigenvalues, plain.eigenvalues, rtol=1e-12, atol=1e-14)
        assert res.n_hvp == plain.n_hvp


def test_unconverged_spectra_are_flagged_in_the_report_and_tables(tiny):
    ctx = _fake_run(tiny, k=4, max_iterations=4, tol=1e-3, method="lanczos")
    imp = ImpResults(ctx.store)
    analysis = hs.HessianAnalysis(ctx, progress=False)
    with pytest.warns(hs.SpectrumWarning, match="not converged"):
        report = analysis.report(hs.volume_points(imp, [1]))
    assert (report["status"] == "budget").all() and not report["converged"].any()
    assert report["flags"].str.contains("not converged").all()
    assert {"entered", "threshold", "method", "blocks", "passes"} <= set(report.columns)
    t1, _ = hs.volume_tables(analysis, imp, [1])
    assert "not converged" in t1.loc[1, "flags"] and "entered W_min(L)" in t1
    flip = hs.flip_table(analysis, imp, [1])
    assert flip["flags"].str.contains("not converged").all()
    # a converged run has nothing to flag; a spectrum cached before status existed still reads
    ok = _fake_run(tiny, k=2, ks_fig22=[2], max_iterations=60, tol=1e-2, method="block_lanczos",
                  block_size=2)
    report = hs.HessianAnalysis(ok, progress=False).report(
        hs.volume_points(ImpResults(ok.store), [1]))
    assert report["status"].isin(["converged", "exhausted"]).all()
    assert (report["method"] == "block_lanczos").all()
    assert (report["blocks"] < report["n_hvp"]).all()
    old = {"converged": False, "eigenvalues": torch.tensor([2.0, 1.0]), "relative_residual": 0.1,
           "tol": 1e-3, "n_hvp": 4}
    assert hs.spectrum_status(old) == "budget"
    assert "not converged" in hs.spectrum_flags(old, 2, 1e-3)


def test_tolerance_parameters_are_validated_against_the_dtype():
    with pytest.raises(ParamsError, match="hessian.tol"):
        params_from_dict({"hessian": {"tol": 1e-7}})
    assert params_from_dict({"hessian": {"tol": 1e-7, "dtype": "float64"}}).hessian.tol == 1e-7
    with pytest.raises(ParamsError, match="hessian.method"):
        params_from_dict({"hessian": {"method": "power"}})
    with pytest.raises(ParamsError, match="hessian.positive_threshold"):
        params_from_dict({"hessian": {"positive_threshold": 0}})
