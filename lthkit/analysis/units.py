"""The expensive analyses of notebooks 04-09 as units of an executor (lthkit.platform.executor):
each spectrum, trace and density (04, 08, 09), each radius pair (05), each line (06, 09), each
plane and surface (07) of every replicate, computed on a worker before the notebooks run.

A unit is one call of a notebook's plan (lthkit.analysis.plans: `Call`, the analysis, its method,
and arguments that are names, not tensors). The worker opens a scratch copy of the replicate's
run folder holding its finished solutions (no trajectories), makes the call exactly as the
notebook makes it, and returns the cache files that appeared; the driver writes those the run
does not hold yet (atomically, checksummed). The notebooks then find their results cached: their
own `compute` of the same plan finds nothing left to do, and they only draw.

Which calls a run still needs is found by making every call of the plans against the real run
folder with its store probing (`RunStore.probing`): a cached result is read, a missing one raises
CacheMissing instead of being computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lthkit.analysis.plans import KINDS, Call, make_call, missing_calls, plan
from lthkit.config.series import ANALYSIS_NOTEBOOKS
from lthkit.platform.executor import UnitsFailedError
from lthkit.store.files import save_bytes
from lthkit.train.baselines import BaselineResults
from lthkit.train.context import Context, open_run
from lthkit.train.imp import ImpResults, finished_imp_files, scratch_run, solution_files

if TYPE_CHECKING:
    from lthkit.config.params import Params
    from lthkit.platform.executor import Executor

__all__ = ["Call", "AnalysisUnit", "ANALYSIS_NOTEBOOKS", "KINDS", "series_calls",
           "missing_calls", "analysis_units", "compute_analysis_unit", "run_analyses_replicates",
           "make_call"]


def series_calls(ctx: Context, stems: set[str]) -> list[Call]:
    """Every call the analysis notebooks among `stems` make on this replicate's run: their plans
    (lthkit.analysis.plans), in the series' order, each call once."""
    calls = [call for stem in ANALYSIS_NOTEBOOKS if stem in stems for call in plan(ctx, stem)]
    return list(dict.fromkeys(calls))


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
