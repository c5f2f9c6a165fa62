"""Executors (lthkit.executor) and the replicates' IMP chains as their units.

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
from lthkit.baselines import BaselineResults, run_baselines, run_baselines_replicates
from lthkit.context import open_run
from lthkit.executor import (RAY_MISSING, ExecutorError, LocalExecutor, UnitsFailedError,
                             make_executor)
from lthkit.imp import ImpResults, run_imp, run_imp_replicates, train_imp_unit
from lthkit.params import Params, params_from_dict
from lthkit.store import verify_folder

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


def test_baseline_groups_as_units_equal_run_baselines(tmp_path, reference_run):
    alone, units = (_params(shutil.copytree(reference_run, tmp_path / name))
                    for name in ("alone", "units"))
    for r in range(alone.run.replicates):
        run_baselines(open_run(alone, replicate=r), progress=False)
    ran = run_baselines_replicates(units, LocalExecutor())
    assert [(u.replicate, u.members) for u in ran] == [
        (r, members) for r in (0, 1) for members in ((("one_shot", 1), ("random_prune", 1)),
                                                     (("fine_tune", 1),))]
    _assert_same(_baselines(units), _baselines(alone))
    assert not verify_folder(units.run_dir())
    assert run_baselines_replicates(units, LocalExecutor()) == []  # all done: nothing runs


def test_report_trains_on_the_executor_before_the_notebooks(tmp_path, monkeypatch):
    import papermill

    import lthkit.baselines as baselines_module
    import lthkit.executor as executor_module
    import lthkit.imp as imp_module
    from lthkit import report

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, parameters, **kw:
                        calls.append((Path(nb).stem[:2], parameters["replicate"])))
    monkeypatch.setattr(executor_module, "make_executor", lambda params: LocalExecutor())
    monkeypatch.setattr(imp_module, "run_imp_replicates",
                        lambda params, executor: calls.append(("imp", executor.kind)))
    monkeypatch.setattr(baselines_module, "run_baselines_replicates",
                        lambda params, executor: calls.append(("baselines", executor.kind)))
    on_ray = _params(tmp_path, run={"executor": "ray"})
    report.run_report(on_ray, tmp_path / "p.yaml", only=["01", "02", "03"], html_copies=False)
    assert calls == [("imp", "local"), ("baselines", "local"), ("01", 1), ("02", 1), ("03", 1),
                     ("01", 0), ("02", 0), ("03", 0)]
    calls.clear()
    report.run_report(on_ray, tmp_path / "p.yaml", only=["03"], html_copies=False)
    report.run_report(_params(tmp_path), tmp_path / "p.yaml", only=["01"], html_copies=False)
    assert calls == [("03", 1), ("03", 0), ("01", 1), ("01", 0)]  # no 01 or 02, or local: none


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
    """train_imp_unit, whose worker process dies after replicate 1's level 0 (mid-chain)."""
    if unit.replicate == 1:
        import lthkit.imp as imp

        finish = imp.finish_solution

        def finish_then_die(*args, **kwargs):
            finish(*args, **kwargs)
            os._exit(1)

        imp.finish_solution = finish_then_die
    return train_imp_unit(unit)


def test_ray_gives_the_local_artifacts_and_a_killed_worker_loses_only_its_chain(
        tmp_path, local_ray, reference):
    """Chains on Ray equal those trained in process (bit for bit, on CPU); a worker that dies in
    the middle of replicate 1's chain loses that chain only, and a rerun trains only it."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    params = _params(tmp_path, run={"executor": "ray", "ray_max_retries": 0})
    with make_executor(params) as executor:
        assert executor.options == {"num_gpus": 0.0, "num_cpus": 1.0, "max_retries": 0}
        with pytest.raises(UnitsFailedError, match=r"1 of 2 .*units \[1\].*run the same command"):
            run_imp_replicates(params, executor, train_unit=_dies_in_replicate_1)
    first = open_run(params, replicate=0).store
    assert ImpResults(first).levels_done() == [0, 1]  # the chain that finished is saved
    assert ImpResults(open_run(params, replicate=1).store).levels_done() == []
    before = _mtimes(first.root / "imp")
    with make_executor(params) as executor:
        assert run_imp_replicates(params, executor) == [1]  # only the lost chain runs again
    assert _mtimes(first.root / "imp") == before  # nothing of replicate 0 was written again
    _assert_same(_artifacts(params), reference)
    assert not verify_folder(params.run_dir())
    assert local_ray.is_initialized()  # a Ray the executor did not start stays up
