"""Executors (lthkit.platform.executor) and the replicates' IMP chains as their units.

The local executor and the missing-Ray message are tested without Ray; the Ray tests share one
local Ray (2 CPUs) for the module, and skip where Ray is not installed (`make test` installs it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, merge

from lthkit.analysis.plans import PLAN_ONLY, OutsidePlanError, compute, missing_calls, plan
from lthkit.analysis.units import ANALYSIS_NOTEBOOKS, analysis_units, run_analyses_replicates
from lthkit.config.params import Params, load_params, params_from_dict
from lthkit.config.series import HESSIAN_VOLUME
from lthkit.platform.executor import (RAY_MISSING, ExecutorError, LocalExecutor, UnitsFailedError,
                                      make_executor)
from lthkit.store.compare import value_differences
from lthkit.store.files import load_tensors, verify_folder
from lthkit.train.baselines import BaselineResults, run_baselines, run_baselines_replicates
from lthkit.train.context import open_run
from lthkit.train.imp import ImpResults, ImpUnit, run_imp, run_imp_replicates, train_imp_unit

# Two replicates of two levels (0 and 1) of two epochs: the smallest chain that prunes and rewinds.
SMALL = {"run": {"replicates": 2, "num_threads": 1}, "train": {"epochs": 2, "milestones": [1]},
         "imp": {"levels": 1},
         # two schedule classes: one_shot and random_prune ("from k", one group), fine_tune
         "baselines": {"kinds": ["one_shot", "random_prune", "fine_tune"], "fine_tune_epochs": 2,
                       "group_size": 2}}


def _params(root: Path, **overrides: dict) -> Params:
    raw = merge(merge(TINY, SMALL), overrides)
    raw["run"]["output_root"] = str(root)
    return params_from_dict(raw, source="small.yaml")


def _artifacts(params: Params) -> dict[str, dict[str, torch.Tensor]]:
    """W_init, W_rewind, and every level's mask and W_min of every replicate, by name."""
    out = {}
    for r in range(params.run.replicates):
        res = ImpResults(open_run(params, replicate=r).store)
        assert res.levels_done() == list(range(params.imp.levels + 1))
        out[f"{r}/init"], out[f"{r}/rewind"] = res.init(), res.rewind()
        for level in res.levels_done():
            out[f"{r}/mask{level}"] = {k: v.float() for k, v in res.mask(level).items()}
            out[f"{r}/final{level}"] = res.final(level)
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), f"{name}: {k} differs"


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """An outputs root whose run's two chains were trained as notebook 01 trains them (run_imp
    per replicate, in process)."""
    root = tmp_path_factory.mktemp("reference")
    params = _params(root)
    for r in range(params.run.replicates):
        run_imp(open_run(params, create=True, replicate=r), progress=False)
    return root


@pytest.fixture(scope="module")
def reference(reference_run) -> dict[str, dict[str, torch.Tensor]]:
    return _artifacts(_params(reference_run))


# --- without Ray ----------------------------------------------------------------------------------

def test_local_executor_returns_in_order_and_hands_each_result_over():
    seen = []
    out = LocalExecutor().map(lambda x: x * x, [3, 1, 2], desc="squares",
                              on_result=lambda i, r: seen.append((i, r)))
    assert out == [9, 1, 4] and seen == [(0, 9), (1, 1), (2, 4)]


def test_executor_ray_without_ray_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert isinstance(make_executor(_params(tmp_path)), LocalExecutor)
    with pytest.raises(ExecutorError) as e:
        make_executor(_params(tmp_path, run={"executor": "ray"}))
    assert str(e.value) == f"small.yaml: {RAY_MISSING}" and "pip install -e '.[ray]'" in RAY_MISSING


def test_imp_replicates_as_units_equal_run_imp_and_resume_from_finished_levels(tmp_path,
                                                                              reference):
    params = _params(tmp_path)
    assert run_imp_replicates(params, LocalExecutor(), levels=0) == [0, 1]
    level0 = {r: _mtimes(open_run(params, replicate=r).store.imp_dir(0)) for r in (0, 1)}
    assert run_imp_replicates(params, LocalExecutor()) == [0, 1]  # level 1, from level 0's files
    _assert_same(_artifacts(params), reference)
    for r in (0, 1):
        store = open_run(params, replicate=r).store
        assert _mtimes(store.imp_dir(0)) == level0[r]  # not written again
        assert (store.imp_dir(1) / "SHA256SUMS").exists() and not verify_folder(store.root)
    assert run_imp_replicates(params, LocalExecutor()) == []  # every chain done: nothing runs


def _baselines(params: Params) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for r in range(params.run.replicates):
        results = BaselineResults(open_run(params, replicate=r).store)
        assert len(results.available()) == len(params.baselines.kinds)
        for kind, level in results.available():
            out[f"{r}/{kind}/{level}/mask"] = {k: v.float() for k, v in
                                               results.mask(kind, level).items()}
            out[f"{r}/{kind}/{level}/final"] = results.final(kind, level)
    return out


@pytest.fixture(scope="module")
def baselines_run(tmp_path_factory, reference_run) -> Path:
    """The reference run with every replicate's baselines trained as notebook 02 trains them."""
    root = shutil.copytree(reference_run, tmp_path_factory.mktemp("baselines") / "root")
    params = _params(root)
    for r in range(params.run.replicates):
        run_baselines(open_run(params, replicate=r), progress=False)
    return root


def test_baseline_groups_as_units_equal_run_baselines(tmp_path, reference_run, baselines_run):
    alone = _params(baselines_run)
    units = _params(shutil.copytree(reference_run, tmp_path / "units"))
    ran = run_baselines_replicates(units, LocalExecutor())
    assert [(u.replicate, u.members) for u in ran] == [
        (r, members) for r in (0, 1) for members in ((("one_shot", 1), ("random_prune", 1)),
                                                     (("fine_tune", 1),))]
    _assert_same(_baselines(units), _baselines(alone))
    assert not verify_folder(units.run_dir())
    assert run_baselines_replicates(units, LocalExecutor()) == []  # all done: nothing runs


# --- the analyses of notebooks 04-09 as units ----------------------------------------------------

# Small spectra, radii, lines, planes and surfaces (the paper's defaults would take minutes).
ANALYSES = {"analysis": {"levels": [2]},
            "hessian": {"subset_size": 16, "k": 2, "ks_fig22": [1, 2], "max_iterations": 4,
                        "tol": 1e-2, "method": "lanczos", "trace_samples": 1,
                        "density_iterations": 3, "band_levels": [2]},
            "landscape": {"examples": 32, "line_points": 3, "radius_directions": 2,
                          "radius_start": 8.0, "radius_max": 400.0, "radius_tol": 0.5,
                          "plane_resolution": 3, "surface_resolution": 3, "surface_examples": 16,
                          "surface_sweep": [8]}}
ANALYSIS_STEMS = set(ANALYSIS_NOTEBOOKS)


def _cache(params: Params) -> dict[str, dict]:
    """Every replicate's cached analysis results, by path."""
    out = {}
    for r in range(params.run.replicates):
        root = open_run(params, replicate=r).store.root
        for path in sorted((root / "cache").rglob("*.pt")):
            out[f"{r}/{path.relative_to(root).as_posix()}"] = load_tensors(path)
    return out


def _compute_plans(ctx) -> None:
    """What notebooks 04-09 compute, through their plans, in process (their `compute` cell)."""
    for stem in ANALYSIS_NOTEBOOKS:
        compute(ctx, plan(ctx, stem))


@pytest.fixture(scope="module")
def analysis_run(tmp_path_factory, baselines_run) -> Path:
    """The baselines' run with one more IMP level in each replicate (Fig 13's plane needs three)."""
    root = shutil.copytree(baselines_run, tmp_path_factory.mktemp("analyses") / "root")
    params = _params(root, imp={"levels": 2})
    for r in range(params.run.replicates):
        run_imp(open_run(params, create=True, replicate=r), progress=False)
    return root


def _analysis_params(root: Path, **overrides: dict) -> Params:
    return _params(root, imp={"levels": 2}, **ANALYSES, **overrides)


@pytest.fixture(scope="module")
def analysed_alone(tmp_path_factory, analysis_run) -> dict[str, dict]:
    """The cache of analysis_run after the notebooks' plans, computed in process."""
    alone = _analysis_params(shutil.copytree(analysis_run, tmp_path_factory.mktemp("alone") / "r"))
    for r in range(alone.run.replicates):
        _compute_plans(open_run(alone, replicate=r))
    return _cache(alone)


def test_analyses_as_units_equal_the_notebooks_and_leave_them_nothing_to_compute(
        tmp_path, analysis_run, analysed_alone):
    """Spectra, radius pairs, lines, planes and surfaces made as units in scratch folders equal
    what the notebooks' plans make in the run folder, bit for bit; afterwards each notebook's
    plan finds everything cached (its `compute` has nothing left to do: test_notebooks_plans
    checks that a notebook computes nothing outside it), and a second pass runs no unit."""
    units = _analysis_params(shutil.copytree(analysis_run, tmp_path / "units"))
    ran = run_analyses_replicates(units, LocalExecutor(), ANALYSIS_STEMS)
    kinds = {u.call.kind for u in ran}
    assert kinds == {"spectra", "radius pairs", "lines", "planes and surfaces"}
    assert {u.replicate for u in ran} == {0, 1}
    assert not value_differences(_cache(units), analysed_alone)
    for r in range(units.run.replicates):
        ctx = open_run(units, replicate=r)
        for stem in ANALYSIS_NOTEBOOKS:
            assert missing_calls(ctx, plan(ctx, stem)) == [], stem
    assert not verify_folder(units.run_dir())
    assert run_analyses_replicates(units, LocalExecutor(), ANALYSIS_STEMS) == []


def test_a_computation_outside_the_plan_is_refused_naming_the_notebook(tmp_path, analysis_run,
                                                                       monkeypatch):
    """With LTHKIT_PLAN_ONLY=1, what `compute` did not compute is refused afterwards (the check
    of the notebooks' plans below); what it computed reads as before."""
    from lthkit.analysis.hessian import HessianAnalysis, imp_solution

    params = _analysis_params(shutil.copytree(analysis_run, tmp_path / "r"))
    ctx = open_run(params)
    calls = plan(ctx, HESSIAN_VOLUME)
    left_out = calls.pop()  # the density of W_min(2): the plan's last call
    assert calls.stem == HESSIAN_VOLUME and left_out.method == "density"
    monkeypatch.setenv(PLAN_ONLY, "1")
    assert compute(ctx, calls) == calls
    H = HessianAnalysis(ctx, progress=False)
    H.trace(imp_solution(ImpResults(ctx.store), 2))  # in the plan: read
    with pytest.raises(OutsidePlanError, match=r"notebooks/04_hessian_volume.ipynb computes "
                                               r"cache/hessian/\S+ outside its plan"):
        H.density(imp_solution(ImpResults(ctx.store), 2))


def test_analysis_units_skip_a_replicate_whose_chain_is_not_trained(tmp_path):
    params = _params(tmp_path, hessian={**ANALYSES["hessian"], "band_levels": [1]})
    run_imp(open_run(params, create=True, replicate=1), progress=False)
    open_run(params, create=True, replicate=0)  # replicate 0: nothing trained yet
    units, given = analysis_units(params, {"04_hessian_volume"})
    assert {u.replicate for u in units} == {1} and set(given) == {1}
    assert all(u.call.method in ("spectrum", "trace", "density") for u in units)
    assert all(not rel.startswith(("cache", "baselines")) and "epochs" not in rel
               for rel in given[1])  # the solutions the analyses read, no trajectories


def test_unit_failures_name_their_units():
    units = [ImpUnit(None, 0, 1, {}), ImpUnit(None, 1, 1, {})]
    err = UnitsFailedError("IMP chains", 2, {1: RuntimeError("worker died")},
                           [u.label for u in units])
    assert "units [1]: replicate 1 IMP chain; the first: RuntimeError: worker died" in str(err)


def test_report_trains_on_the_executor_before_the_notebooks(tmp_path, monkeypatch):
    import papermill

    import lthkit.platform.executor as executor_module
    import lthkit.train.baselines as baselines_module
    import lthkit.train.imp as imp_module
    from lthkit import report
    from lthkit.analysis import units as analysis_units

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, parameters, **kw:
                        calls.append((Path(nb).stem[:2], parameters["replicate"])))
    monkeypatch.setattr(executor_module, "make_executor", lambda params: LocalExecutor())
    monkeypatch.setattr(imp_module, "run_imp_replicates",
                        lambda params, executor: calls.append(("imp", executor.kind)))
    monkeypatch.setattr(baselines_module, "run_baselines_replicates",
                        lambda params, executor: calls.append(("baselines", executor.kind)))
    monkeypatch.setattr(analysis_units, "run_analyses_replicates",
                        lambda params, executor, stems: calls.append(("analyses", sorted(stems))))
    on_ray = _params(tmp_path, run={"executor": "ray"})
    report.run_report(on_ray, tmp_path / "p.yaml", only=["01", "02", "03"], html_copies=False)
    assert calls == [("imp", "local"), ("baselines", "local"), ("01", 1), ("02", 1), ("03", 1),
                     ("01", 0), ("02", 0), ("03", 0)]
    calls.clear()
    report.run_report(on_ray, tmp_path / "p.yaml", only=["03"], html_copies=False)
    report.run_report(_params(tmp_path), tmp_path / "p.yaml", only=["01", "05"], html_copies=False)
    assert calls == [("03", 1), ("03", 0), ("01", 1), ("05", 1), ("01", 0), ("05", 0)]  # local
    calls.clear()
    report.run_report(on_ray, tmp_path / "p.yaml", only=["04", "05"], html_copies=False)
    assert calls == [("analyses", ["04_hessian_volume", "05_basin_radius"]), ("04", 1), ("05", 1),
                     ("04", 0), ("05", 0)]


# --- each notebook computes nothing outside its plan --------------------------------------------
# The smoke series of the notebook tests runs notebooks 04-08 with LTHKIT_PLAN_ONLY=1
# (tests/conftest.py, SmokeSeries.plan_only): a notebook computing outside its plan fails there.


# --- on a local Ray -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=80 * 2 ** 20,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def _dies_in_replicate_1(unit):
    """train_imp_unit, whose worker process dies when replicate 1's level 1 is trained but not
    yet sent (mid-chain: level 0 was sent)."""
    if unit.replicate == 1:
        import lthkit.train.imp as imp

        finish, finished = imp.finish_solution, []

        def finish_then_die(*args, **kwargs):
            metrics = finish(*args, **kwargs)
            finished.append(1)
            if len(finished) == 2:  # level 1 trained, not yet sent; level 0 was sent
                os._exit(1)
            return metrics

        imp.finish_solution = finish_then_die
    yield from train_imp_unit(unit)


def test_ray_gives_the_local_artifacts_and_a_killed_worker_loses_only_its_chain(
        tmp_path, local_ray, reference):
    """Chains on Ray equal those trained in process (bit for bit, on CPU); each level is sent as
    it finishes, so a worker that dies in the middle of replicate 1's chain loses only the level
    under way, and a rerun trains only what was lost."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    params = _params(tmp_path, run={"executor": "ray", "ray_max_retries": 0})
    with make_executor(params) as executor:
        assert executor.options == {"num_gpus": 0.0, "num_cpus": 1.0, "max_retries": 0}
        with pytest.raises(UnitsFailedError, match=r"1 of 2 .*units \[1\].*run the same command"):
            run_imp_replicates(params, executor, train_unit=_dies_in_replicate_1)
    first, second = (open_run(params, replicate=r).store for r in (0, 1))
    assert ImpResults(first).levels_done() == [0, 1]  # the chain that finished is saved
    assert ImpResults(second).levels_done() == [0]  # and the level sent before the worker died
    before = (_mtimes(first.root / "imp"), _mtimes(second.imp_dir(0)))
    with make_executor(params) as executor:
        assert run_imp_replicates(params, executor) == [1]  # only the lost chain runs again
    assert (_mtimes(first.root / "imp"), _mtimes(second.imp_dir(0))) == before  # not rewritten
    _assert_same(_artifacts(params), reference)
    assert not verify_folder(params.run_dir())
    assert local_ray.is_initialized()  # a Ray the executor did not start stays up


def test_analyses_on_ray_equal_the_notebooks_and_a_failed_unit_is_done_by_a_rerun(
        tmp_path, local_ray, analysis_run, analysed_alone):
    """The analysis units as Ray tasks (their inputs sent once per replicate) give the notebooks'
    cache bit for bit; units that fail are named, the others' results are saved, and a rerun
    computes only the failed ones."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    params = _analysis_params(shutil.copytree(analysis_run, tmp_path / "ray"),
                              run={"executor": "ray", "ray_max_retries": 0})
    with make_executor(params) as executor:
        with pytest.raises(UnitsFailedError, match=r"units \[\d+\]: replicate 1 "
                                                   r"radius_pair\(W_min\(2\), Pr_2"):
            run_analyses_replicates(params, executor, ANALYSIS_STEMS,
                                    compute=_fails_on_a_radius_pair_of_replicate_1)
        done = _cache(params)
        assert 0 < len(done) < len(analysed_alone)
        before = _mtimes(params.run_dir())
        again = run_analyses_replicates(params, executor, ANALYSIS_STEMS)
    assert [(u.replicate, u.call.method) for u in again] == [(1, "radius_pair")]
    after = _mtimes(params.run_dir())
    cached = [k for k in before if "cache/" in k and k.endswith(".pt")]
    assert cached and all(after[k] == before[k] for k in cached)  # none written again
    assert not value_differences(_cache(params), analysed_alone)
    assert not verify_folder(params.run_dir())


def _fails_on_a_radius_pair_of_replicate_1(unit, given):
    """compute_analysis_unit, except on the radius pair of W_min(2) in replicate 1."""
    from lthkit.analysis.units import compute_analysis_unit

    call = unit.call
    if unit.replicate == 1 and call.method == "radius_pair" and call.args[1].kind == "proj":
        raise RuntimeError("a unit that fails")
    return compute_analysis_unit(unit, given)
