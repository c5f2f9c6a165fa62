"""Every analysis parameter that changes a cached number is in the keys of exactly the results it
changes.

The test walks every key of the analysis sections (and run.seed): it changes one value at a
time and records the cache keys that the analyses ask the store for (lines, radii, planes,
surfaces, points, trajectories, spectra, traces, densities). `CHANGES` declares, for each
parameter, the kinds of result whose keys must change with it, and only those: a Hessian
parameter in a landscape key fails, as does one missing from a key. A key that changes no cache
key must be listed in `params.RESULT_NEUTRAL_KEYS` with the reason it changes no number. Nothing
is computed: the store answers with canned results.
"""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from lthkit.analysis import geometry
from lthkit.analysis.hessian.analysis import HessianAnalysis, HessianPoint
from lthkit.analysis.landscape.run import Landscape, PointRef
from lthkit.config.base import flatten
from lthkit.config.params import RESULT_NEUTRAL_KEYS
from lthkit.tickets.bain import bain_landscape
from lthkit.train.context import Context

from param_walk import with_another_value

WALKED = ("analysis", "hessian", "landscape")
EXTRA = ("run.seed", "bain.surface_split", "bain.directions", "bain.draw")  # Bain's surfaces

# The kinds of cached result the walk reaches (the first word of a landscape key, the solver of a
# Hessian key): see `result_kind`.
LOSSES = ("point", "line", "radius", "plane", "surface")  # on the landscape's examples
TRAJECTORIES = ("trajectories",)  # Fig 4: on the analysis subset, BatchNorm recalibrated
HESSIAN = ("spectrum", "trace", "density")
ANY_LOSS = LOSSES + TRAJECTORIES
EVERYTHING = ANY_LOSS + HESSIAN

# Which results each parameter changes: the kinds whose cache keys must change with it, and no
# other. A new parameter of the walked sections goes here (or, when it changes no number, in
# params.RESULT_NEUTRAL_KEYS with the reason).
CHANGES: dict[str, tuple[str, ...]] = {
    "run.seed": EVERYTHING,  # subsets, directions, starting vectors
    "analysis.subset_size": EVERYTHING,
    # surfaces follow landscape.surface_bn (Li et al.'s solution statistics, or recalibrated)
    "analysis.recalibrate_bn": tuple(k for k in EVERYTHING if k != "surface"),
    "analysis.batch_size": ANY_LOSS,  # BatchNorm statistics are taken per batch
    "landscape.dtype": ANY_LOSS,  # the evaluation precision of losses (not of Hessians)
    "landscape.examples": ("point", "line", "radius", "plane"),  # surfaces have their own
    "landscape.one_pass_bn": LOSSES,
    "landscape.line_points": ("line",),
    "landscape.line_margin": ("line",),
    "landscape.radius_cutoff": ("radius",),
    "landscape.radius_value": ("radius",),
    "landscape.radius_reference": ("radius",),
    "landscape.radius_directions": ("radius",),
    "landscape.radius_start": ("radius",),
    "landscape.radius_growth": ("radius",),
    "landscape.radius_max": ("radius",),
    "landscape.radius_tol": ("radius",),
    "landscape.plane_resolution": ("plane",),
    "landscape.plane_margin": ("plane",),
    "landscape.surface_examples": ("surface",),
    "landscape.surface_resolution": ("surface",),
    "landscape.surface_span": ("surface",),
    "landscape.surface_include_bn": ("surface",),
    "landscape.surface_bn": ("surface",),
    "landscape.surface_directions": ("surface",),
    "landscape.surface_draw": ("surface",),
    "landscape.line_test_examples": ("line",),  # Result 4's test-split lines (line_test_...)
    "bain.surface_split": ("surface",),
    "bain.directions": ("surface",),
    "bain.draw": ("surface",),
    "hessian.subset_size": HESSIAN,
    "hessian.dtype": HESSIAN,
    "hessian.k": ("spectrum",),
    "hessian.method": ("spectrum",),
    "hessian.block_size": ("spectrum",),
    "hessian.max_iterations": ("spectrum",),
    "hessian.tol": ("spectrum",),
    "hessian.tol_relative_to": ("spectrum",),
    "hessian.positive_threshold": ("spectrum",),
    "hessian.trace_samples": ("trace",),
    "hessian.density_iterations": ("density",),
    "hessian.density_runs": ("density",),
}


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


def result_kind(analysis: str, key: str) -> str:
    """The kind of result a cache key holds: point, line, radius, plane, surface (landscape),
    trajectories, spectrum, trace, density (hessian)."""
    if analysis == "landscape":
        return key.split("_")[0]
    if analysis == "hessian":
        solver = re.match(r"[a-z]+", key).group()
        return {"top": "spectrum", "trace": "trace", "slq": "density"}[solver]
    return analysis


def keys_by_kind(keys: list[tuple[str, str]]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for analysis, key in keys:
        out.setdefault(result_kind(analysis, key), Counter())[key] += 1
    return out


def changed_kinds(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> set[str]:
    """The kinds of result whose cache keys differ between two walks."""
    a, b = keys_by_kind(before), keys_by_kind(after)
    return {kind for kind in a.keys() | b.keys() if a.get(kind) != b.get(kind)}


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
    walked = _walked_keys(base)
    undeclared = [k for k in walked if k not in CHANGES and k not in RESULT_NEUTRAL_KEYS]
    assert not undeclared, (
        f"undeclared parameter(s) {undeclared}: say which results each changes in CHANGES "
        f"(tests/test_cache_keys.py), or list it in params.RESULT_NEUTRAL_KEYS with the reason "
        f"it changes no number")
    both = sorted(set(CHANGES) & set(RESULT_NEUTRAL_KEYS))
    assert not both, f"{both}: declared in CHANGES and listed in params.RESULT_NEUTRAL_KEYS"
    stale = sorted(set(CHANGES) - set(walked))
    assert not stale, f"{stale}: declared in CHANGES but no such parameter is walked"
    wrong, untried = [], []
    for key in walked:
        section, name = key.split(".")
        value = getattr(getattr(base, section), name)
        changed, candidate = with_another_value(lambda v: make(_with(key, v)), section, name,
                                                value)
        if changed is None:
            untried.append(key)
            continue
        moved = changed_kinds(before, cache_keys(changed))
        expected = set(CHANGES.get(key, ()))
        if moved != expected:
            wrong.append(f"{key} ({value!r} -> {candidate!r}) changes the keys of "
                         f"{sorted(moved) or 'nothing'}, declared {sorted(expected) or 'nothing'}"
                         f"{' (RESULT_NEUTRAL_KEYS)' if key in RESULT_NEUTRAL_KEYS else ''}")
    assert not untried, f"no other valid value for {untried}: extend param_walk.other_values"
    assert not wrong, "cache keys that differ from CHANGES:\n" + "\n".join(wrong)


def test_the_walk_sees_what_it_should():
    """The recorder reaches every kind of cached analysis, so an absent key cannot pass unseen."""
    from lthkit.config.params import params_from_dict

    keys = cache_keys(params_from_dict(_base_raw(), source="walk"))
    analyses = {a for a, _ in keys}
    assert analyses == {"landscape", "trajectories", "hessian"}
    assert set(keys_by_kind(keys)) == set(EVERYTHING)
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
