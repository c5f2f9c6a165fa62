"""Baselines (issue 3): masks, starting points, zeros, reuse; grouped training; geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lthkit.baselines import KINDS, BaselineResults, baseline_plan, run_baselines
from lthkit.context import open_run
from lthkit.geometry import pairwise_matrices, rewind_distances
from lthkit.imp import ImpResults, run_imp
from lthkit.points import ParamLayout
from lthkit.pruning import count_alive, is_nested, masked_state
from lthkit.store import RunMismatchError
from lthkit.training import train, train_together


@pytest.fixture
def imp_run(tiny):
    ctx = open_run(tiny(baselines={"levels": [2], "fine_tune_epochs": 1, "fine_tune_lr": 0.01}),
                   create=True)
    run_imp(ctx, progress=False)
    return ctx, ImpResults(ctx.store)


def _equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_each_baseline_has_the_stated_mask_and_start(imp_run):
    ctx, imp = imp_run
    level, k = 2, ctx.params.imp.rewind_iteration
    m = imp.mask(level)
    plans = {kind: baseline_plan(ctx, imp, kind, level) for kind in KINDS}
    for kind, plan in plans.items():
        assert count_alive(plan.mask) == count_alive(m), f"{kind}: sparsity of m_L"
        assert all(torch.count_nonzero(plan.start[n][~plan.mask[n]]) == 0 for n in plan.mask)
    rewind, prev = imp.rewind(), imp.final(level - 1)
    # masks
    for kind in ("fine_tune", "lr_rewind", "random_reinit"):
        assert all(torch.equal(plans[kind].mask[n], m[n]) for n in m)
    one_shot = plans["one_shot"].mask
    w0 = imp.final(0)
    kept = torch.cat([w0[n].abs()[one_shot[n]] for n in m])
    dropped = torch.cat([w0[n].abs()[~one_shot[n]] for n in m])
    assert kept.min() >= dropped.max(), "one-shot keeps the largest weights of W_min(0)"
    assert is_nested(plans["random_prune"].mask, imp.mask(level - 1))
    assert not all(torch.equal(plans["random_prune"].mask[n], m[n]) for n in m)
    assert not is_nested(plans["random_prune_oneshot"].mask, imp.mask(level - 1))
    # starting points
    for kind in ("one_shot", "random_prune", "random_prune_oneshot"):
        assert _equal(plans[kind].start, masked_state(rewind, plans[kind].mask))
        assert plans[kind].start_iteration == k
    for kind in ("fine_tune", "lr_rewind"):
        assert _equal(plans[kind].start, masked_state(prev, m))
    assert plans["lr_rewind"].start_iteration == k and plans["fine_tune"].start_iteration == 0
    assert plans["fine_tune"].cfg.lr == 0.01 and plans["fine_tune"].cfg.epochs == 1
    assert plans["fine_tune"].cfg.milestones == []
    ri = plans["random_reinit"]
    assert ri.start_iteration == 0
    init = imp.init()
    survivors = m["conv.weight"]
    assert not torch.equal(ri.start["conv.weight"][survivors], init["conv.weight"][survivors])


def test_trained_baselines_keep_zeros_and_are_reused(imp_run, tiny, monkeypatch):
    ctx, imp = imp_run
    results = run_baselines(ctx, progress=False, together=False)
    assert sorted(results.available()) == sorted((kind, 2) for kind in KINDS)
    for kind in KINDS:
        final, mask = results.final(kind, 2), results.mask(kind, 2)
        assert all(torch.count_nonzero(final[n][~mask[n]]) == 0 for n in mask)
        assert results.metrics(kind, 2)["final"]["alive"] == count_alive(imp.mask(2))
    table = results.summary(imp)
    assert set(table["strategy"]) == {*KINDS, "imp"}
    import lthkit.imp as imp_module
    monkeypatch.setattr(imp_module, "train", lambda *a, **k: pytest.fail("retrained"))
    run_baselines(ctx, progress=False, together=False)  # nothing left to train
    other = tiny(baselines={"levels": [2], "fine_tune_epochs": 1, "fine_tune_lr": 0.05})
    folder = results.files("fine_tune", 2).folder
    (folder / "metrics.json").unlink()  # unfinished, so it would be trained again ...
    with pytest.raises(RunMismatchError, match="lr"):  # ... but not with another lr
        run_baselines(open_run(other, create=True), kinds=["fine_tune"], progress=False)


def test_training_together_equals_training_one_after_another(imp_run):
    ctx, imp = imp_run
    cfg = ctx.params.train.model_copy(update={"epochs": 1})
    plans = [baseline_plan(ctx, imp, kind, 2) for kind in ("one_shot", "random_prune")]
    alone, grouped = [], []
    for plan in plans:
        for bucket in (alone, grouped):
            model = ctx.new_model()
            model.load_state_dict(plan.start)
            bucket.append(model)
    for i, (model, plan) in enumerate(zip(alone, plans)):
        train(model, ctx.data, cfg, seed=0, tag=f"g{i}", mask=plan.mask, start_iteration=2,
              progress=False)
    train_together(grouped, ctx.data, cfg, seed=0, tags=["g0", "g1"], masks=[p.mask for p in plans],
                   start_iteration=2, progress=False)
    for a, b, plan in zip(alone, grouped, plans):
        sa, sb = a.state_dict(), b.state_dict()
        for name in sa:
            assert torch.allclose(sa[name].float(), sb[name].float(), atol=2e-4, rtol=1e-3), name
        params = dict(b.named_parameters())
        assert all(torch.count_nonzero(params[n][~m]) == 0 for n, m in plan.mask.items())


def test_run_baselines_together_writes_every_member(imp_run):
    ctx, _ = imp_run
    results = run_baselines(ctx, kinds=["one_shot", "random_prune", "lr_rewind"], progress=False,
                            together=True)
    assert sorted(k for k, _ in results.available()) == ["lr_rewind", "one_shot", "random_prune"]
    assert not list((ctx.store.root / "baselines").glob("together_*.pt")), "group checkpoint removed"


def test_distances_and_cosines_match_numpy():
    g = np.random.default_rng(0)
    vectors = {f"p{i}": torch.tensor(g.normal(size=50)) for i in range(4)}
    dist, cos = pairwise_matrices(vectors)
    arr = np.stack([v.numpy() for v in vectors.values()])
    for i in range(4):
        for j in range(4):
            assert dist.iloc[i, j] == pytest.approx(np.linalg.norm(arr[i] - arr[j]), abs=1e-9)
            ref = arr[i] @ arr[j] / (np.linalg.norm(arr[i]) * np.linalg.norm(arr[j]))
            assert cos.iloc[i, j] == pytest.approx(ref, abs=1e-9)


def test_rewind_distances_match_a_direct_computation(imp_run):
    ctx, imp = imp_run
    layout = ParamLayout.from_model(ctx.new_model())
    table = rewind_distances(imp, layout, [1, 2])
    for level in (1, 2):
        mask = imp.mask(level)
        rewind, prev, cur = imp.rewind(), imp.final(level - 1), imp.final(level)
        d1 = d2 = 0.0
        for name in layout.names:
            m = mask[name].double().numpy() if name in mask else 1.0
            r = rewind[name].double().numpy() * m
            d1 += float(((r - prev[name].double().numpy() * m) ** 2).sum())
            d2 += float(((r - cur[name].double().numpy()) ** 2).sum())
        assert table.loc[level, "to_projected_previous"] == pytest.approx(d1 ** 0.5, rel=1e-5)
        assert table.loc[level, "to_solution"] == pytest.approx(d2 ** 0.5, rel=1e-5)


@pytest.mark.notebook
def test_02_and_03_on_smoke(smoke):
    from lthkit.params import load_params
    from lthkit.store import RunStore

    smoke.run("01_train_imp")
    smoke.run("02_baselines")
    smoke.run("03_distances_trajectories")
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    results = BaselineResults(store)
    levels = params.levels(params.baselines.levels, minimum=1)
    assert sorted(results.available()) == sorted((k, lv) for k in params.baselines.kinds
                                                 for lv in levels)
    figures = {p.name for p in (store.root / "figures").glob("*.png")}
    assert "fig02_strategies.png" in figures and "fig03_distances.png" in figures
    assert {f"fig04_trajectory_level{lv:02d}.png" for lv in range(1, params.imp.levels + 1)} <= figures
    assert {f"fig14_15_baselines_level{lv:02d}.png" for lv in levels} <= figures
    cached = list((store.root / "cache" / "trajectories").glob("*.pt"))
    assert len(cached) == params.imp.levels
