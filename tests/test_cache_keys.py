"""Every analysis parameter that changes a cached number is in that number's cache key.

The test walks every key of the analysis sections (and run.seed): it changes one value at a
time and records the cache keys that the analyses ask the store for (lines, radii, planes,
surfaces, points, trajectories, spectra, traces, densities). A key whose change leaves every
cache key as it was must be listed in `params.RESULT_NEUTRAL_KEYS` with the reason it changes
no number; a listed key that does change a cache key is listed wrongly. Nothing is computed: the
store answers with canned results.
"""

from __future__ import annotations

import typing
from types import SimpleNamespace

import pytest
import torch

from lthkit import geometry
from lthkit.analysis.hessian.analysis import HessianAnalysis, HessianPoint
from lthkit.analysis.landscape.run import Landscape, PointRef
from lthkit.config.base import ParamsError, flatten
from lthkit.config.params import RESULT_NEUTRAL_KEYS, SECTIONS
from lthkit.tickets.bain import bain_landscape
from lthkit.train.context import Context

WALKED = ("analysis", "hessian", "landscape")
EXTRA = ("run.seed", "bain.surface_split", "bain.directions", "bain.draw")  # Bain's surfaces


class _Recorder:
    """A store that records the (analysis, key) asked for and computes nothing."""

    def __init__(self):
        self.keys: list[tuple[str, str]] = []
        self.root = None

    def cached(self, analysis: str, key: str, compute):
        self.keys.append((analysis, key))
        if key.startswith("point_imp01"):
            return {"loss": 1.0, "acc": 0.5}
        if key.startswith("point_"):
            return {"loss": 2.0, "acc": 0.5}  # another loss: the pair rule of radii shows
        if analysis == "hessian":
            return {"status": "converged"}
        return {}


def _never():
    raise AssertionError("the walk computed something")


def cache_keys(params) -> list[tuple[str, str]]:
    """The cache keys of one of each analysis of the kit under `params`."""
    store = _Recorder()
    ctx = SimpleNamespace(params=params, store=store, device=torch.device("cpu"),
                          data=SimpleNamespace(num_train=50_000))
    ctx.analysis_key = lambda: Context.analysis_key(ctx)
    a, b, c, zero = PointRef("imp", 1), PointRef("imp", 2), PointRef("one_shot", 2), PointRef("imp", 0)
    for split in ("train", "test"):
        land = Landscape(ctx, progress=False, surface_split=split)
        land.surface(a)
        land.surface(a, examples=50, resolution=5, space_level=2)
    bain_landscape(ctx, progress=False).surface(a)  # notebook 11's surfaces (its sub-run's)
    land = Landscape(ctx, progress=False)
    land.own_loss(a)
    land.line(a, b)
    land.line_test(a, b)
    land.radius_pair(a, c, 2)
    land.radius(b, 2)
    land.plane(zero, a, b, extras=[c])
    geometry.trajectory_losses(ctx, None, 1)
    hessian = HessianAnalysis(ctx, progress=False)
    point = HessianPoint("imp_L01_min", "imp_m01", "", load=_never)
    hessian.spectrum(point)
    hessian.trace(point)
    hessian.density(point)
    return store.keys


def _options(annotation) -> list:
    """The literal values a field's annotation admits (auto, the dtypes, ...)."""
    found = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, str | int | float) and not isinstance(arg, type):
            found.append(arg)
        else:
            found += _options(arg)
    return found


def _candidates(section: str, name: str, value) -> list:
    """Other values to try for a key, most likely valid first."""
    options = _options(SECTIONS[section].model_fields[name].annotation)
    others = [o for o in options if o != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, max(1, value - 1), *others]
    if isinstance(value, float):
        return [value * 1.5, value / 2, value * 0.9, *others]
    if isinstance(value, list):
        return [value[:1], [1], [*value, value[-1] + 1] if value else [1]]
    if value is None:
        return [32, 0.5, [0, 1, 2], 1]
    return [*others, 4, [1]]


def _base_raw() -> dict:
    return {"run": {"name": "keys", "seed": 0},
            "data": {"dataset": "synthetic_cifar10", "train_size": 2000, "test_size": 500},
            "model": {"arch": "resnet20", "width": 4},
            "train": {"epochs": 2, "batch_size": 100, "milestones": [1]},
            "imp": {"levels": 3, "rewind_iteration": 2},
            "analysis": {"subset_size": 500, "batch_size": 250},
            "hessian": {"k": 20, "max_iterations": 100, "ks_fig22": [5, 20]},
            "landscape": {"surface_sweep": [50]}}


def _with(key: str, value) -> dict:
    raw = _base_raw()
    section, name = key.split(".")
    raw.setdefault(section, {})[name] = value
    return raw


def _walked_keys(base) -> list[str]:
    flat = flatten(base.model_dump(include=set(WALKED)))
    return sorted(flat) + list(EXTRA)


def test_every_analysis_parameter_is_in_the_keys_of_what_it_changes(tmp_path):
    from lthkit.config.params import params_from_dict

    def make(raw):
        raw["run"]["output_root"] = str(tmp_path)
        return params_from_dict(raw, source="walk")

    base = make(_base_raw())
    before = cache_keys(base)
    missing, wrongly_listed, untried = [], [], []
    for key in _walked_keys(base):
        section, name = key.split(".")
        value = getattr(getattr(base, section), name)
        changed = None
        for candidate in _candidates(section, name, value):
            try:
                changed = make(_with(key, candidate))
                break
            except ParamsError:
                continue
        if changed is None:
            untried.append(key)
            continue
        moves = cache_keys(changed) != before
        if not moves and key not in RESULT_NEUTRAL_KEYS:
            missing.append(f"{key}: {value!r} -> {candidate!r}")
        if moves and key in RESULT_NEUTRAL_KEYS:
            wrongly_listed.append(key)
    assert not untried, f"no other valid value found for {untried}: extend _candidates"
    assert not missing, ("in no cache key, and not listed in params.RESULT_NEUTRAL_KEYS: "
                         f"{missing}")
    assert not wrongly_listed, f"listed as changing no number, but in a cache key: {wrongly_listed}"


def test_the_walk_sees_what_it_should():
    """The recorder reaches every kind of cached analysis, so an absent key cannot pass unseen."""
    from lthkit.config.params import params_from_dict

    keys = cache_keys(params_from_dict(_base_raw(), source="walk"))
    analyses = {a for a, _ in keys}
    assert analyses == {"landscape", "trajectories", "hessian"}
    names = [k.split("_")[0] for a, k in keys if a == "landscape"]
    for kind in ("point", "line", "radius", "plane", "surface"):
        assert kind in names, kind
    assert any(k.startswith("line_test_") for a, k in keys), "Result 4's test-split lines"


@pytest.mark.parametrize("dtype", ["tfloat32", "bfloat16"])
def test_landscape_dtype_gives_its_own_results(dtype):
    """Issue 22 item 3: bf16 barriers were returned from an fp32 cache."""
    from lthkit.config.params import params_from_dict

    fp32 = cache_keys(params_from_dict(_base_raw(), source="walk"))
    other = cache_keys(params_from_dict(_with("landscape.dtype", dtype), source="walk"))
    changed = {a for (a, k), (_, k2) in zip(fp32, other) if k != k2}
    assert changed == {"landscape", "trajectories"}
    assert all(k != k2 for (a, k), (_, k2) in zip(fp32, other) if a == "landscape")


@pytest.mark.parametrize("normalization", ["imagenet", "none",
                                           {"mean": [0.5] * 3, "std": [0.25] * 3}])
def test_data_normalization_gives_every_analysis_its_own_results(normalization):
    """Issue 33, item 3: every cached number is taken on the normalized inputs; the dataset's own
    statistics (the default) keep the keys results had before."""
    from lthkit.config.params import params_from_dict

    own = cache_keys(params_from_dict(_base_raw(), source="walk"))
    said = cache_keys(params_from_dict(_with("data.normalization", "dataset"), source="walk"))
    other = cache_keys(params_from_dict(_with("data.normalization", normalization),
                                        source="walk"))
    assert said == own
    assert len(other) == len(own) and all(k != k2 for (_, k), (_, k2) in zip(own, other))
