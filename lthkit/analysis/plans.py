"""What each analysis notebook (04-09) computes, declared once: its plan.

A notebook's plan is the list of cached computations it makes on one replicate's run (`Call`s:
spectra, traces and densities of its Hessian points, radius pairs, lines, planes and surfaces),
in the order it makes them. The notebook runs `compute(ctx, plan_0N(ctx))` before it draws, so
that every later cell only reads the cache; `lthkit.analysis.units` sends the same calls to an
executor before the notebooks run (`lthkit-report` with Ray), and `lthkit.report.workload` counts
them. A notebook that computed anything outside its plan would be caught by its test: with
LTHKIT_PLAN_ONLY=1 in the environment, `compute` leaves the store refusing to compute anything
more (`OutsidePlanError`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from lthkit.config.series import (BARRIERS, BASIN_RADIUS, HESSIAN_VOLUME, PRUNING_CHOICES,
                                  SUBLEVEL_SETS, VGG16_APPENDIX, notebook_file)
from lthkit.platform.executor import LocalExecutor
from lthkit.store.layout import CacheMissing
from lthkit.train.baselines import BaselineResults
from lthkit.train.context import Context
from lthkit.train.imp import ImpResults

__all__ = ["Call", "Plan", "KINDS", "PLANS", "PLAN_ONLY", "OutsidePlanError", "plan",
           "plan_04", "plan_05", "plan_06", "plan_07", "plan_08", "plan_09", "compute",
           "make_call", "missing_calls", "hold_to_plan"]

# The kinds of computation (one progress bar each, in this order).
KINDS = {"spectrum": "spectra", "trace": "spectra", "density": "spectra",
         "radius_pair": "radius pairs", "line": "lines", "line_test": "lines",
         "plane": "planes and surfaces", "surface": "planes and surfaces"}
# Set to 1 (a notebook's test does): after `compute`, the store refuses to compute anything else.
PLAN_ONLY = "LTHKIT_PLAN_ONLY"


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


class Plan(list):
    """The calls of one notebook (`stem`), each once, in the order the notebook makes them."""

    def __init__(self, stem: str, calls: Iterable[Call] = ()):
        super().__init__(dict.fromkeys(calls))
        self.stem = stem


class OutsidePlanError(RuntimeError):
    """A notebook computed a result its plan does not declare (only with LTHKIT_PLAN_ONLY=1)."""


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


# --- the plans ---------------------------------------------------------------------------------

def _levels(ctx: Context) -> list[int]:
    p = ctx.params
    return p.levels(p.analysis.levels, minimum=1)


def _results(ctx: Context) -> tuple[Any, Any]:
    """The IMP and baseline results a plan reads: the run folder's, or those a stand-in context
    declares (`results`: lthkit.report.workload counts the plans of a run not trained yet)."""
    declared = getattr(ctx, "results", None)
    if declared is not None:
        return declared
    return ImpResults(ctx.store), BaselineResults(ctx.store)


def _landscape(ctx: Context) -> Any:
    """The run's Landscape, reading the results `_results` gives (what exists decides which
    lines and which plane points a notebook draws)."""
    from lthkit.analysis.landscape import Landscape

    land = Landscape(ctx, progress=False)
    land.__dict__["imp"], land.__dict__["baselines"] = _results(ctx)  # its cached properties
    return land


def _spectra(*groups) -> list[Call]:
    """A spectrum call for each point of `groups` (lists or choice_points results), each once."""
    from lthkit.analysis.hessian import unique_points

    return [Call("hessian", "spectrum", (pt.spec,)) for pt in unique_points(*groups)]


def plan_04(ctx: Context) -> Plan:
    """Notebook 04: the spectra of Tables I, III, V and Fig 22, then the trace and density of
    W_min(L) at level 0 and every analysis level."""
    from lthkit.analysis.hessian import imp_solution, volume_points

    (imp, _), levels = _results(ctx), _levels(ctx)
    calls = _spectra(volume_points(imp, levels))
    for level in sorted({0, *levels}):
        spec = imp_solution(imp, level).spec
        calls += [Call("hessian", "trace", (spec,)), Call("hessian", "density", (spec,))]
    return Plan(HESSIAN_VOLUME, calls)


def plan_05(ctx: Context) -> Plan:
    """Notebook 05: the radius pairs of Fig 6 / Table II (level L space), then of Fig 8 / Table
    IV (level L-1 space)."""
    from lthkit.analysis.landscape import PointRef

    levels = _levels(ctx)
    calls = [Call("landscape", "radius_pair", (PointRef("imp", lv), PointRef("proj", lv), lv))
             for lv in levels]
    calls += [Call("landscape", "radius_pair", (PointRef("imp", lv - 1), PointRef("rpr", lv),
                                                lv - 1)) for lv in levels]
    return Plan(BASIN_RADIUS, calls)


def _lines(ctx: Context, figures) -> list[Call]:
    """The lines of `figures` at the analysis levels where the baselines they need exist."""
    from lthkit.analysis.landscape import figure_ends

    levels, land = _levels(ctx), _landscape(ctx)
    return [Call("landscape", "line", ends) for figure in figures
            for lv in land.figure_levels(figure, levels) for ends in figure_ends(figure, lv)]


def plan_06(ctx: Context) -> Plan:
    """Notebook 06: the lines of Figs 12, 9, 17, 19, then Fig 12's lines on the test split."""
    from lthkit.analysis.landscape import BARRIER_FIGURES, figure_ends

    calls = _lines(ctx, BARRIER_FIGURES)
    calls += [Call("landscape", "line_test", ends) for lv in _levels(ctx)
              for ends in figure_ends("fig12", lv)]
    return Plan(BARRIERS, calls)


def plan_07(ctx: Context) -> Plan:
    """Notebook 07: Fig 13's plane (none while its levels are not finished: the notebook says
    so), the surface around W_min(L) at level 0 and every analysis level, and the sweep of
    subsample sizes at the last level."""
    from lthkit.analysis.landscape import PointRef

    levels, sweep = _levels(ctx), ctx.params.landscape.surface_sweep
    calls: list[Call] = []
    try:
        abc, extras = _landscape(ctx).plane_points(levels)
    except ValueError:  # plane_levels not finished: notebook 07 says so itself
        abc = []
    if abc:
        calls.append(Call("landscape", "plane", tuple(abc), (("extras", tuple(extras)),)))
    calls += [Call("landscape", "surface", (PointRef("imp", lv),)) for lv in sorted({0, *levels})]
    calls += [Call("landscape", "surface", (PointRef("imp", levels[-1]),), (("examples", n),))
              for n in sorted(sweep)]
    return Plan(SUBLEVEL_SETS, calls)


def plan_08(ctx: Context) -> Plan:
    """Notebook 08: the spectra of every pruning choice (W_min(L), Pr_L, the band projections,
    the baselines), then Result 3's prune-fraction sweep from W_min(L-1)."""
    from lthkit.analysis.hessian import choice_points, imp_solution, sweep_points

    p, levels = ctx.params, _levels(ctx)
    imp, baselines = _results(ctx)
    band_levels = p.levels(p.hessian.band_levels, minimum=1)
    groups: list = [choice_points(imp, baselines, sorted({*levels, *band_levels}),
                                  p.baselines.kinds, band_levels, p.imp.prune_fraction,
                                  p.imp.scope)]
    if p.hessian.sweep_fractions:
        level = p.hessian.sweep_level or levels[0]
        groups.append([imp_solution(imp, level - 1),
                       *sweep_points(imp, level, p.hessian.sweep_fractions, p.imp.scope)])
    return Plan(PRUNING_CHOICES, _spectra(*groups))


def plan_09(ctx: Context) -> Plan:
    """Notebook 09: the spectra of Tables VI-IX (notebook 04's points and the W_RI, W_RP
    choices), then the lines of Figs 28, 29, 31."""
    from lthkit.analysis.hessian import BASELINE_COMPARISONS, choice_points, volume_points
    from lthkit.analysis.landscape import APPENDIX_LINE_FIGURES

    p, levels = ctx.params, _levels(ctx)
    imp, baselines = _results(ctx)
    choices = choice_points(imp, baselines, levels, list(BASELINE_COMPARISONS), [],
                            p.imp.prune_fraction, p.imp.scope)
    calls = _spectra(volume_points(imp, levels), choices)
    return Plan(VGG16_APPENDIX, calls + _lines(ctx, APPENDIX_LINE_FIGURES))


PLANS: dict[str, Callable[[Context], Plan]] = {
    HESSIAN_VOLUME: plan_04, BASIN_RADIUS: plan_05, BARRIERS: plan_06, SUBLEVEL_SETS: plan_07,
    PRUNING_CHOICES: plan_08, VGG16_APPENDIX: plan_09}


def plan(ctx: Context, stem: str) -> Plan:
    """The plan of notebook `stem` (a constant of lthkit.config.series) on this replicate."""
    return PLANS[stem](ctx)


# --- computing a plan ----------------------------------------------------------------------------

def compute(ctx: Context, calls: list[Call]) -> list[Call]:
    """Compute, here, every call of a plan whose result the run folder does not hold yet (one
    progress bar per kind, as the executor's local mode shows them); return those computed.
    With LTHKIT_PLAN_ONLY=1, the store then refuses to compute anything else (a test's check
    that the notebook's plan holds everything it computes)."""
    missing, analyses = missing_calls(ctx, calls), {}
    for kind in dict.fromkeys(KINDS.values()):
        of_kind = [call for call in missing if call.kind == kind]
        if of_kind:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the notebook warns when it reads the result
                LocalExecutor().map(lambda call: make_call(ctx, call, analyses), of_kind,
                                    desc=kind)
    if os.environ.get(PLAN_ONLY, "") not in ("", "0"):
        hold_to_plan(ctx, getattr(calls, "stem", None))
    return missing


def hold_to_plan(ctx: Context, stem: str | None = None) -> None:
    """From now on the run's store reads what it holds and raises OutsidePlanError, naming the
    result and the plan to add it to, instead of computing anything."""
    store = ctx.store
    cached = store.cached
    where = notebook_file(stem) if stem else "this notebook"

    def planned_only(analysis: str, key: str, compute: Callable[[], Any]) -> Any:
        try:
            with store.probing():
                return cached(analysis, key, compute)
        except CacheMissing as e:
            raise OutsidePlanError(
                f"{where} computes {e.path.relative_to(store.root)} outside its plan: add the "
                f"call that makes it to its plan in lthkit/analysis/plans.py") from None

    store.cached = planned_only
