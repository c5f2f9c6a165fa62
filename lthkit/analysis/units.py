"""The expensive analyses of notebooks 04-09 as units of an executor (lthkit.platform.executor):
each
spectrum, trace and density (04, 08, 09), each radius pair (05), each line (06, 09), each plane
and surface (07) of every replicate, computed on a worker before the notebooks run.

A unit is one cached computation named so that a worker can make it again (`Call`: the analysis,
its method, and arguments that are names, not tensors). The worker opens a scratch copy of the
replicate's run folder holding its finished solutions (no trajectories), makes the call exactly as
the notebook makes it, and returns the cache files that appeared; the driver writes those the run
does not hold yet (atomically, checksummed). The notebooks then find their results cached and only
draw them. What a unit's planner missed, a notebook still computes itself: the planners speed the
series up, they never decide what it shows.

Which calls a run still needs is found by making every call of the plan against the real run
folder with its store probing (`RunStore.probing`): a cached result is read, a missing one raises
CacheMissing instead of being computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lthkit.platform.executor import UnitsFailedError
from lthkit.store.files import save_bytes
from lthkit.store.layout import CacheMissing
from lthkit.train.baselines import BaselineResults
from lthkit.train.context import Context, open_run
from lthkit.train.imp import ImpResults, finished_imp_files, scratch_run, solution_files

if TYPE_CHECKING:
    from lthkit.config.params import Params
    from lthkit.platform.executor import Executor

__all__ = ["Call", "AnalysisUnit", "ANALYSIS_NOTEBOOKS", "KINDS", "series_calls",
           "missing_calls", "analysis_units", "compute_analysis_unit", "run_analyses_replicates",
           "make_call"]

# The notebooks whose analyses run as units, and the kinds of unit (one progress bar each).
ANALYSIS_NOTEBOOKS = ("04_hessian_volume", "05_basin_radius", "06_barriers", "07_sublevel_sets",
                      "08_pruning_choices", "09_vgg16_appendix")
KINDS = {"spectrum": "spectra", "trace": "spectra", "density": "spectra",
         "radius_pair": "radius pairs", "line": "lines", "line_test": "lines", "plane": "planes and surfaces",
         "surface": "planes and surfaces"}


@dataclass(frozen=True)
class Call:
    """One cached computation of a notebook: `method` of the run's HessianAnalysis ('hessian';
    its first argument a HessianPoint spec) or Landscape ('landscape'; PointRefs), with
    arguments and keyword arguments ((name, value) pairs) that pickle."""

    analysis: str
    method: str
    args: tuple = ()
    kwargs: tuple = ()

    @property
    def kind(self) -> str:
        return KINDS[self.method]

    def __str__(self) -> str:
        args = [*map(_name, self.args), *(f"{k}={_name(v)}" for k, v in self.kwargs)]
        return f"{self.method}({', '.join(args)})"


def _name(arg: Any) -> str:
    if isinstance(arg, tuple) and arg and isinstance(arg[0], str):  # a HessianPoint spec
        return f"{arg[0]}{arg[1:]}"
    if isinstance(arg, (list, tuple)):
        return "[" + ", ".join(map(_name, arg)) + "]"
    return getattr(arg, "label", None) or repr(arg)


def make_call(ctx: Context, call: Call, analyses: dict[str, Any] | None = None) -> Any:
    """Make a call on a run's context (as its notebook does); `analyses` keeps the
    HessianAnalysis and Landscape between calls."""
    from lthkit.analysis.hessian import HessianAnalysis, point_from_spec
    from lthkit.analysis.landscape import Landscape

    analyses = {} if analyses is None else analyses
    if call.analysis not in analyses:
        make = {"hessian": HessianAnalysis, "landscape": Landscape}[call.analysis]
        analyses[call.analysis] = make(ctx, progress=False)
    analysis = analyses[call.analysis]
    args = list(call.args)
    if call.analysis == "hessian":
        args[0] = point_from_spec(ImpResults(ctx.store), BaselineResults(ctx.store), args[0])
    return getattr(analysis, call.method)(*args, **dict(call.kwargs))


# --- what each notebook computes --------------------------------------------------------------

def _hessian(method: str, point) -> Call:
    return Call("hessian", method, (point.spec,))


def hessian_calls(ctx: Context, stems: set[str]) -> list[Call]:
    """Spectra, traces and densities of notebooks 04 and 08, each once."""
    from lthkit.analysis.hessian import (BASELINE_COMPARISONS, choice_points, imp_solution,
                                         sweep_points, unique_points, volume_points)

    p = ctx.params
    imp, baselines = ImpResults(ctx.store), BaselineResults(ctx.store)
    levels = p.levels(p.analysis.levels, minimum=1)
    groups: list = []
    calls: list[Call] = []
    if "04_hessian_volume" in stems:
        groups.append(volume_points(imp, levels))
        for level in sorted({0, *levels}):
            solution = imp_solution(imp, level)
            calls += [_hessian("trace", solution), _hessian("density", solution)]
    if "09_vgg16_appendix" in stems:  # Tables VI, VII, VIII, IX and Figs 26, 27, 30, 32
        groups.append(volume_points(imp, levels))
        groups.append(choice_points(imp, baselines, levels, list(BASELINE_COMPARISONS), [],
                                    p.imp.prune_fraction, p.imp.scope))
    if "08_pruning_choices" in stems:
        band_levels = p.levels(p.hessian.band_levels, minimum=1)
        groups.append(choice_points(imp, baselines, sorted({*levels, *band_levels}),
                                    p.baselines.kinds, band_levels, p.imp.prune_fraction,
                                    p.imp.scope))
        if p.hessian.sweep_fractions:  # Result 3's sweep, from W_min(L-1)
            level = p.hessian.sweep_level or levels[0]
            groups.append([imp_solution(imp, level - 1),
                           *sweep_points(imp, level, p.hessian.sweep_fractions, p.imp.scope)])
    spectra = [_hessian("spectrum", pt) for pt in unique_points(*groups)] if groups else []
    return spectra + calls


def landscape_calls(ctx: Context, stems: set[str]) -> list[Call]:
    """Radius pairs of 05, lines of 06, the plane and surfaces of 07."""
    from lthkit.analysis.landscape import (APPENDIX_LINE_FIGURES, BARRIER_FIGURES, Landscape,
                                           PointRef, figure_ends)

    p = ctx.params
    levels = p.levels(p.analysis.levels, minimum=1)
    land = Landscape(ctx, progress=False)
    calls: list[Call] = []
    if "05_basin_radius" in stems:
        calls += [Call("landscape", "radius_pair", (PointRef("imp", lv), PointRef("proj", lv), lv))
                  for lv in levels]
        calls += [Call("landscape", "radius_pair", (PointRef("imp", lv - 1), PointRef("rpr", lv),
                                                    lv - 1)) for lv in levels]
    figures = [*(BARRIER_FIGURES if "06_barriers" in stems else ()),
               *(APPENDIX_LINE_FIGURES if "09_vgg16_appendix" in stems else ())]
    for figure in figures:
        for lv in land.figure_levels(figure, levels):
            calls += [Call("landscape", "line", ends) for ends in figure_ends(figure, lv)]
    if "06_barriers" in stems:  # Result 4: the test accuracy along Fig 12's lines
        calls += [Call("landscape", "line_test", ends) for lv in levels
                  for ends in figure_ends("fig12", lv)]
    if "07_sublevel_sets" in stems:
        try:
            abc, extras = land.plane_points(levels)
        except ValueError:  # plane_levels not finished: notebook 07 says so itself
            abc = []
        if abc:
            calls.append(Call("landscape", "plane", tuple(abc), (("extras", tuple(extras)),)))
        calls += [Call("landscape", "surface", (PointRef("imp", lv),))
                  for lv in sorted({0, *levels})]
        calls += [Call("landscape", "surface", (PointRef("imp", levels[-1]),), (("examples", n),))
                  for n in sorted(p.landscape.surface_sweep)]
    return list(dict.fromkeys(calls))  # each once, in order


def series_calls(ctx: Context, stems: set[str]) -> list[Call]:
    """Every call the analysis notebooks among `stems` make on this replicate's run."""
    return hessian_calls(ctx, stems) + landscape_calls(ctx, stems)


def missing_calls(ctx: Context, calls: list[Call]) -> list[Call]:
    """The calls whose results the run folder does not hold yet (found without computing)."""
    missing, analyses = [], {}
    with ctx.store.probing(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a flagged spectrum warns in its notebook, not here
        for call in calls:
            try:
                make_call(ctx, call, analyses)
            except CacheMissing:
                missing.append(call)
    return missing


# --- the units ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalysisUnit:
    """One call on one replicate; `params` are the run's (the worker derives the replicate's)."""

    params: "Params"
    replicate: int
    call: Call

    @property
    def label(self) -> str:
        return f"replicate {self.replicate} {self.call}"


def _inputs_done(ctx: Context) -> bool:
    """Whether the replicate has every IMP level its analyses read (0 to the last analysed)."""
    p = ctx.params
    levels = p.levels(p.analysis.levels, minimum=1)
    done = set(ImpResults(ctx.store).levels_done())
    return bool(levels) and set(range(max(levels) + 1)) <= done


def given_files(ctx: Context) -> dict[str, bytes]:
    """A replicate's finished IMP solutions and baselines without their trajectories (the inputs
    of every analysis), {path relative to its folder: bytes}."""
    files = finished_imp_files(ctx.store, trajectory=False)
    baselines = BaselineResults(ctx.store)
    for kind, level in baselines.available():
        for path in solution_files(baselines.files(kind, level).folder, trajectory=False):
            files[path.relative_to(ctx.store.root).as_posix()] = path.read_bytes()
    return files


def compute_analysis_unit(unit: AnalysisUnit, given: dict[int, dict[str, bytes]]
                          ) -> dict[str, bytes]:
    """Make a unit's call in a scratch run folder of the worker holding the replicate's `given`
    files; return the cache files it made. Writes nothing that stays."""
    with scratch_run(unit.params, unit.replicate, given[unit.replicate]) as ctx:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notebook warns when it reads the result
            make_call(ctx, unit.call)
        cache = ctx.store.root / "cache"
        return {p.relative_to(ctx.store.root).as_posix(): p.read_bytes()
                for p in sorted(cache.rglob("*.pt"))}


def write_cache_files(root: Path, files: dict[str, bytes]) -> None:
    """Write a unit's cache files into a replicate's folder, those it does not hold yet only (a
    result a notebook may already have read is never replaced)."""
    for rel, data in files.items():
        path = root / rel
        if not path.resolve().is_relative_to(root.resolve() / "cache"):
            raise ValueError(f"{rel}: a unit returned a file outside cache/ of {root}")
        if not path.exists():
            save_bytes(path, data)


def analysis_units(params: "Params", stems: set[str]
                   ) -> tuple[list[AnalysisUnit], dict[int, dict[str, bytes]]]:
    """The units every replicate still needs for the analysis notebooks among `stems`, and the
    files each replicate's units start from ({replicate: files})."""
    units: list[AnalysisUnit] = []
    given: dict[int, dict[str, bytes]] = {}
    for r in range(params.run.replicates):
        ctx = open_run(params, replicate=r)
        if not _inputs_done(ctx):
            continue  # its notebooks stop with the message that names the notebook to run first
        needed = missing_calls(ctx, series_calls(ctx, stems))
        if needed:
            given[r] = given_files(ctx)
            units += [AnalysisUnit(params, r, call) for call in needed]
    return units, given


def run_analyses_replicates(params: "Params", executor: "Executor", stems: set[str],
                            compute: Callable[..., dict[str, bytes]] = compute_analysis_unit
                            ) -> list[AnalysisUnit]:
    """Compute what the analysis notebooks among `stems` still need, for every replicate, as
    units of `executor` (one map, and one progress bar, per kind of unit); each unit's cache files
    are written here as it finishes. Returns the units run."""
    units, given = analysis_units(params, stems)
    roots = {r: open_run(params, replicate=r).store.root for r in given}
    failures: dict[int, BaseException] = {}
    for kind in dict.fromkeys(KINDS.values()):
        positions = [i for i, u in enumerate(units) if u.call.kind == kind]
        if not positions:
            continue
        of_kind = [units[i] for i in positions]
        try:
            executor.map(compute, of_kind, desc=kind, shared=given,
                         on_result=lambda i, files, of_kind=of_kind: write_cache_files(
                             roots[of_kind[i].replicate], files))
        except UnitsFailedError as e:  # the other kinds still run; every failure is told
            failures |= {positions[i]: cause for i, cause in e.failures.items()}
    if failures:
        raise UnitsFailedError("analysis units", len(units), failures, [u.label for u in units])
    return units
