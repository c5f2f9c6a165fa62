"""Work counted from the parameters equals the work a small run really does."""

from __future__ import annotations

import pytest

from lthkit.analysis.landscape import alpha_grid
from lthkit.analysis.plans import plan
from lthkit.config.params import load_params
from lthkit.config.series import ANALYSIS_NOTEBOOKS, PRUNING_CHOICES
from lthkit.report.workload import count_work, line_points, planned_calls, trajectory_points
from lthkit.train.baselines import run_baselines
from lthkit.train.context import open_run
from lthkit.train.imp import run_imp


def _iterations_run(metrics: dict) -> int:
    return metrics["history"][-1]["iteration"] - metrics["final"]["start_iteration"]


def test_training_iterations_and_trajectories_match_a_real_run(tiny):
    params = tiny(baselines={"levels": [2], "fine_tune_epochs": 1, "fine_tune_lr": 0.01,
                             "kinds": ["one_shot", "fine_tune", "random_reinit"]},
                  report={"notebooks": ["01_train_imp", "02_baselines"]})
    ctx = open_run(params, create=True)
    imp = run_imp(ctx, progress=False)
    base = run_baselines(ctx, progress=False)
    work = {w.what: w for w in count_work(params)}
    imp_its = sum(_iterations_run(imp.metrics(lv)) for lv in imp.levels_done())
    assert work["IMP: 3 levels"].count == imp_its
    counted = sum(w.count for w in work.values()
                  if w.notebook == "02_baselines" and w.spec.unit == "train_iter")
    assert counted == sum(_iterations_run(base.metrics(k, lv)) for k, lv in base.available())
    ipe = ctx.data.iterations_per_epoch(params.train.batch_size)
    for level in imp.levels_done():
        kept = len(list(imp.level(level).trajectory()))
        assert trajectory_points(level, params.imp, params.train.epochs, ipe) == kept


def test_grouped_baselines_count_group_steps(tiny):
    params = tiny(baselines={"levels": [1, 2], "kinds": ["one_shot", "random_prune",
                                                         "random_prune_oneshot"]},
                  report={"notebooks": ["02_baselines"]})
    alone = sum(w.count for w in count_work(params, group_size=1) if w.spec.unit == "train_iter")
    grouped = count_work(params, group_size=4)
    groups = [w for w in grouped if w.spec.unit == "group_iter"]
    assert [w.spec.group for w in groups] == [4, 2]  # 6 trainings of one schedule: 4 + 2
    assert not [w for w in grouped if w.spec.unit == "train_iter"]
    assert sum(w.count for w in groups) * 3 == alone  # 2 group steps stand for 6 trainings' steps


def test_the_plans_counted_are_the_plans_of_the_trained_run(tiny):
    """The analysis notebooks' work is counted from their plans on a stand-in of the trained run:
    the same calls as their plans on the run once notebooks 01 and 02 trained it."""
    params = tiny(analysis={"levels": [1, 2]},
                  baselines={"levels": [2], "fine_tune_epochs": 1, "fine_tune_lr": 0.01,
                             "kinds": ["one_shot", "random_prune", "random_prune_oneshot",
                                       "random_reinit", "fine_tune"]},
                  hessian={"band_levels": [1], "sweep_fractions": [0.5]},
                  landscape={"surface_sweep": [16]},
                  report={"notebooks": list(ANALYSIS_NOTEBOOKS)})
    ctx = open_run(params, create=True)
    run_imp(ctx, progress=False)
    run_baselines(ctx, progress=False)
    seen, trained = set(), {}
    for stem in ANALYSIS_NOTEBOOKS:
        trained[stem] = [call for call in plan(ctx, stem) if call not in seen]
        seen.update(trained[stem])
    assert planned_calls(params) == trained
    assert {call.method for calls in trained.values() for call in calls} == {
        "spectrum", "trace", "density", "radius_pair", "line", "line_test", "plane", "surface"}


def test_line_points_match_the_analysis_code():
    for n, margin in ((9, 0.2), (41, 0.2), (5, 0.0), (11, 0.37)):
        assert line_points(n, margin) == len(alpha_grid(n, margin))


def test_every_notebook_of_the_smoke_preset_is_counted():
    params = load_params("params/smoke.yaml")
    notebooks = {w.notebook for w in count_work(params)}
    assert notebooks == set(params.report.notebooks)
    assert planned_calls(params)[PRUNING_CHOICES]


@pytest.mark.parametrize("preset", ["resnet20_paper", "vgg16_paper", "quick", "gpu_check"])
def test_presets_count_positive_work(preset):
    params = load_params(f"params/{preset}.yaml")
    work = count_work(params)
    assert work and all(w.count > 0 for w in work), [w for w in work if w.count <= 0]
    assert {w.notebook for w in work} <= set(params.report.notebooks)
