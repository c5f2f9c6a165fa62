"""How much work each notebook of a parameter file does, counted from the parameters alone.

`benchmarks/paper_time.py` multiplies these counts by unit costs measured on a device to project
how long a preset takes. Counting lives here, beside the code whose work it counts, so tests can
check it against what a small run really did. The analysis notebooks (04-09) are counted from
their plans (lthkit.analysis.plans), evaluated on a stand-in of the run as notebooks 01 and 02
would leave it (every IMP level, every baseline kind at `baselines.levels`): the spectra, radius
pairs, lines, planes and surfaces counted are the calls the notebooks make, each once.

Units of work (each `WorkItem` names its `unit` and, through `UnitSpec`, what to measure):

    train_iter    one training step of one network (forward, backward, masked update)
    group_iter    one fused step of K networks trained together (baselines.group_size)
    test_eval     one pass over the test set in eval mode (after each epoch, and at the end)
    hvp           one Hessian-vector product on the Hessian subset (spectra, traces, densities;
                  a spectrum's products are counted with a measured products-per-spectrum)
    point         the loss at one weight vector, BatchNorm recalibrated (lines, planes, radii,
                  trajectories, surfaces; a radius direction's points with a measured count)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from lthkit.config.catalog import (SPLIT_SIZES, iterations_per_epoch, known_train_size,
                                   split_sizes)
from lthkit.config.params import Params
from lthkit.config.series import (ANALYSIS_NOTEBOOKS, BARRIERS, BASELINES, BASIN_RADIUS,
                                  DISTANCES, HESSIAN_VOLUME, PRUNING_CHOICES, SUBLEVEL_SETS,
                                  TICKET_LANDSCAPES, TICKET_TRANSFER, TRAIN_IMP, VGG16_APPENDIX)
from lthkit.config.training import ImpSection, TrainSection

__all__ = ["UnitSpec", "WorkItem", "count_work", "planned_calls", "imp_iterations",
           "trajectory_points", "iterations_per_epoch", "train_size", "line_points", "SPLITS",
           "baseline_members", "baseline_schedule_groups"]

SPLITS = SPLIT_SIZES  # training and test examples per dataset (lthkit.config.catalog)


@dataclass(frozen=True)
class UnitSpec:
    """What one unit costs depends on: the network, the data and the sizes involved."""

    unit: str                 # train_iter, group_iter, test_eval, hvp, point
    arch: str
    width: int | None
    dataset: str
    batch: int = 0            # training batch (train_iter, group_iter)
    examples: int = 0         # examples per unit (test_eval, hvp, point)
    chunk: int = 0            # examples per forward pass (hvp, point)
    group: int = 1            # networks per fused step (group_iter)
    optimizer: str = "sgd"


@dataclass
class WorkItem:
    """`count` units of `spec` done by `notebook` for `what`; `per` scales the count by a
    measured number (products per spectrum, points per radius direction) when not empty."""

    notebook: str
    what: str
    spec: UnitSpec
    count: float
    per: str = ""              # "", "products_per_spectrum", "points_per_direction"
    notes: list[str] = field(default_factory=list)


def train_size(dataset: str, requested: int | None) -> int:
    """Training examples of a dataset (its known size, or the seeded subset asked for)."""
    return known_train_size(dataset, requested)


def test_size(dataset: str, requested: int | None) -> int:
    full = split_sizes(dataset)[1]
    return min(full, requested) if requested else full


def _train_spec(p: Params, cfg: TrainSection, unit: str = "train_iter", group: int = 1,
                arch: str | None = None, width: int | None = None, dataset: str | None = None
                ) -> UnitSpec:
    return UnitSpec(unit, arch or p.model.network, width if arch else p.model.width,
                    dataset or p.data.name, batch=cfg.batch_size, group=group,
                    optimizer=cfg.optimizer)


def imp_iterations(level: int, epochs: int, ipe: int, rewind_iteration: int) -> int:
    """Training steps of one IMP level: the whole schedule at level 0, from k on after."""
    return epochs * ipe - (0 if level == 0 else rewind_iteration)


def trajectory_points(level: int, imp: ImpSection, epochs: int, ipe: int) -> int:
    """Points of one level's kept trajectory: its start and every kept epoch."""
    if not imp.save_every:
        return 0
    first = 0 if level == 0 else imp.rewind_iteration // ipe
    kept = [e for e in range(first + 1, epochs + 1) if e % imp.save_every == 0 or e == epochs]
    return 1 + len(kept)


def line_points(n: int, margin: float) -> int:
    """Points of one line: `alpha_grid(n, margin)`'s length."""
    extra = math.ceil(margin * (n - 1) - 1e-9) if margin > 0 else 0
    return n + 2 * extra


def baseline_members(p: Params) -> list[tuple[str, int, TrainSection, int]]:
    """(kind, level, schedule, start iteration) of every baseline training of notebook 02."""
    from lthkit.train.baselines import fine_tune_schedule

    k = p.imp.rewind_iteration
    out = []
    for level in p.levels(p.baselines.levels, minimum=1):
        for kind in p.baselines.kinds:
            if kind == "fine_tune":
                out.append((kind, level, fine_tune_schedule(p.train, p), 0))
            elif kind == "random_reinit":
                out.append((kind, level, p.train, 0))
            else:
                out.append((kind, level, p.train, k))
    return out


def count_work(p: Params, group_size: int = 1) -> list[WorkItem]:
    """Every unit of work the preset's notebooks do (those in `report.notebooks`)."""
    notebooks = set(p.report.notebooks)
    items: list[WorkItem] = []
    n_train = train_size(p.data.name, p.data.train_size)
    n_test = test_size(p.data.name, p.data.test_size)
    ipe = iterations_per_epoch(n_train, p.train.batch_size)
    a, lp, hp = p.analysis, p.landscape, p.hessian
    subset = min(a.subset_size, n_train)
    land_n = min(lp.examples or subset, subset)
    land_chunk = land_n if lp.one_pass_bn else a.batch_size
    h_n = min(hp.subset_size or subset, subset)
    h_chunk = hp.batch_size or a.batch_size
    evals_per_run = lambda cfg: math.ceil(cfg.epochs / cfg.eval_every) + 2  # noqa: E731
    point = UnitSpec("point", p.model.network, p.model.width, p.data.name, examples=land_n,
                     chunk=land_chunk)
    hvp = UnitSpec("hvp", p.model.network, p.model.width, p.data.name, examples=h_n,
                   chunk=h_chunk)
    test_eval = UnitSpec("test_eval", p.model.network, p.model.width, p.data.name,
                         examples=n_test, chunk=p.train.eval_batch_size)
    levels = p.levels(a.levels, minimum=1)

    if TRAIN_IMP in notebooks:
        its = sum(imp_iterations(lv, p.train.epochs, ipe, p.imp.rewind_iteration)
                  for lv in range(p.imp.levels + 1))
        items.append(WorkItem(TRAIN_IMP, f"IMP: {p.imp.levels + 1} levels",
                              _train_spec(p, p.train), its))
        items.append(WorkItem(TRAIN_IMP, "test-set evaluations", test_eval,
                              (p.imp.levels + 1) * evals_per_run(p.train)))

    if BASELINES in notebooks:
        items += _baseline_items(p, ipe, group_size, test_eval)

    analysis_nbs = {DISTANCES, VGG16_APPENDIX} & notebooks
    for nb in sorted(analysis_nbs):
        kept = set(p.levels(p.imp.trajectory_levels))
        n = sum(trajectory_points(lv, p.imp, p.train.epochs, ipe) +
                trajectory_points(lv - 1, p.imp, p.train.epochs, ipe)
                for lv in levels if lv in kept and lv - 1 in kept)
        items.append(WorkItem(nb, "Fig 4 trajectories", UnitSpec(
            "point", p.model.network, p.model.width, p.data.name, examples=subset,
            chunk=a.batch_size), n))

    planned = planned_calls(p)

    def count(stem: str, method: str) -> int:
        return sum(call.method == method for call in planned.get(stem, []))

    spectra = {stem: [c for c in calls if c.method == "spectrum"]
               for stem, calls in planned.items()}
    baseline_spectra = [c for c in spectra.get(VGG16_APPENDIX, [])
                        if c.args[0][0] == "baseline_solution"]
    nb = HESSIAN_VOLUME if HESSIAN_VOLUME in planned else VGG16_APPENDIX
    volume_spectra = len(spectra.get(nb, [])) - (len(baseline_spectra) if nb == VGG16_APPENDIX
                                                 else 0)
    if nb in planned:
        items.append(WorkItem(nb, f"top-{hp.k} spectra (Tables I, III, V)", hvp, volume_spectra,
                              per="products_per_spectrum"))
    if HESSIAN_VOLUME in planned:
        items.append(WorkItem(HESSIAN_VOLUME, "Hutchinson traces", hvp,
                              count(HESSIAN_VOLUME, "trace") * hp.trace_samples))
        items.append(WorkItem(HESSIAN_VOLUME, "SLQ densities", hvp, count(
            HESSIAN_VOLUME, "density") * hp.density_iterations * hp.density_runs))

    if BASIN_RADIUS in planned:
        radii = 2 * count(BASIN_RADIUS, "radius_pair")  # both points of each pair
        items.append(WorkItem(BASIN_RADIUS, f"{radii} radii x {lp.radius_directions} "
                              "directions", point, radii * lp.radius_directions,
                              per="points_per_direction"))
        items.append(WorkItem(BASIN_RADIUS, "own losses", point, radii))

    line_n = line_points(lp.line_points, lp.line_margin)
    if BARRIERS in planned:
        items.append(WorkItem(BARRIERS, "lines", point, line_n * count(BARRIERS, "line")))
        items.append(WorkItem(BARRIERS, "Fig 12's lines on the test split (Result 4)", point,
                              line_n * count(BARRIERS, "line_test")))
    if VGG16_APPENDIX in planned:
        items.append(WorkItem(VGG16_APPENDIX, "lines (Figs 28, 29, 31)", point,
                              line_n * count(VGG16_APPENDIX, "line")))
        items.append(WorkItem(VGG16_APPENDIX, "spectra of W_RI, W_RP (Tables VIII, IX)", hvp,
                              len(baseline_spectra), per="products_per_spectrum"))

    if SUBLEVEL_SETS in planned:
        for call in planned[SUBLEVEL_SETS]:
            if call.method == "plane":  # the grid, and the loss at each point on it
                items.append(WorkItem(SUBLEVEL_SETS, "Fig 13 plane", point, lp.plane_resolution
                                      ** 2 + len(call.args) + len(dict(call.kwargs)["extras"])))
        surf = UnitSpec("point", p.model.network, p.model.width, p.data.name,
                        examples=min(lp.surface_examples, subset),
                        chunk=min(lp.surface_examples, subset))
        surfaces = [dict(c.kwargs).get("examples") for c in planned[SUBLEVEL_SETS]
                    if c.method == "surface"]
        items.append(WorkItem(SUBLEVEL_SETS, "filter-normalized surfaces", surf,
                              surfaces.count(None) * lp.surface_resolution ** 2))
        for n in (n for n in surfaces if n is not None):
            items.append(WorkItem(SUBLEVEL_SETS, f"surface on {n} examples", UnitSpec(
                "point", p.model.network, p.model.width, p.data.name, examples=min(n, subset),
                chunk=min(n, subset)), lp.surface_resolution ** 2))

    if PRUNING_CHOICES in planned:
        items.append(WorkItem(PRUNING_CHOICES, "spectra of the pruning choices", hvp,
                              len(spectra[PRUNING_CHOICES]), per="products_per_spectrum"))

    if TICKET_TRANSFER in notebooks:
        items += _notebook10_items(p)
    if TICKET_LANDSCAPES in notebooks:
        items += _notebook11_items(p, subset)
    return items


class _TrainedImp:
    """A run's IMP results once notebook 01 trained every level (the plans only name points)."""

    def __init__(self, levels: int):
        self.done = list(range(levels + 1))

    def levels_done(self) -> list[int]:
        return self.done

    def final(self, level: int):  # pragma: no cover - a plan loads no weights
        raise AssertionError("a plan names its points, it never loads them")

    mask = final


class _TrainedBaselines(_TrainedImp):
    """A run's baselines once notebook 02 trained each kind at each of `baselines.levels`."""

    def __init__(self, p: Params):
        levels = p.levels(p.baselines.levels, minimum=1)
        self.trained = [(kind, lv) for kind in p.baselines.kinds for lv in levels]

    def available(self) -> list[tuple[str, int]]:
        return self.trained


@dataclass
class _TrainedRun:
    """What a notebook's plan reads of a run (lthkit.analysis.plans), before the run exists."""

    params: Params
    results: tuple


def planned_calls(p: Params) -> dict[str, list]:
    """{notebook: its calls} of the analysis notebooks among `report.notebooks`, their plans on
    the run once notebooks 01 and 02 trained it; a call an earlier notebook of the series makes
    is left out of the later one's (they share the cache)."""
    from lthkit.analysis.plans import plan

    run = _TrainedRun(p, (_TrainedImp(p.imp.levels), _TrainedBaselines(p)))
    seen: set = set()
    out = {}
    for stem in ANALYSIS_NOTEBOOKS:
        if stem in p.report.notebooks:
            out[stem] = [call for call in plan(run, stem) if call not in seen]
            seen.update(out[stem])
    return out


def baseline_schedule_groups(p: Params) -> list[tuple[int, TrainSection, list[tuple]]]:
    """Notebook 02's trainings by schedule: (start iteration, schedule, [(kind, level, schedule)]);
    only trainings of one schedule can be trained together."""
    by_schedule: dict[tuple, list] = {}
    for kind, level, cfg, start in baseline_members(p):
        by_schedule.setdefault((start, cfg.model_dump_json()), []).append((kind, level, cfg))
    return [(start, group[0][2], group) for (start, _), group in by_schedule.items()]


def _baseline_items(p: Params, ipe: int, group_size: int, test_eval: UnitSpec) -> list[WorkItem]:
    """Baseline trainings, grouped K at a time by schedule when group_size > 1."""
    items = []
    for start, cfg, group in baseline_schedule_groups(p):
        its = cfg.epochs * ipe - start
        kinds = sorted({kind for kind, _, _ in group})
        if group_size > 1:
            full, rest = divmod(len(group), group_size)
            for k, n in ((group_size, full), (rest, 1 if rest else 0)):
                if n:
                    spec = _train_spec(p, cfg, "group_iter" if k > 1 else "train_iter", group=k)
                    items.append(WorkItem(BASELINES, f"{', '.join(kinds)}: {n} group(s) "
                                          f"of {k}", spec, n * its))
        else:
            items.append(WorkItem(BASELINES, f"{', '.join(kinds)}: {len(group)} trainings",
                                  _train_spec(p, cfg), len(group) * its))
        items.append(WorkItem(BASELINES, f"test-set evaluations ({', '.join(kinds)})",
                              test_eval, len(group) * (math.ceil(cfg.epochs / cfg.eval_every) + 2)))
    return items


def _sub_run_iterations(imp: ImpSection, cfg: TrainSection, n_train: int) -> int:
    ipe = iterations_per_epoch(n_train, cfg.batch_size)
    return sum(imp_iterations(lv, cfg.epochs, ipe, imp.rewind_iteration)
               for lv in range(imp.levels + 1))


def _notebook10_items(p: Params) -> list[WorkItem]:
    """The MNIST runs: MLP and LeNet-5 tickets with their controls, the transfer tasks."""
    m = p.mnist
    n = train_size(m.data.name, m.data.train_size)
    items = []
    for name in ("mlp", "lenet5"):
        spec = getattr(m, name)
        its = _sub_run_iterations(spec.imp, spec.train, n)
        control = (spec.imp.levels * spec.train.epochs
                   * iterations_per_epoch(n, spec.train.batch_size))
        items.append(WorkItem(TICKET_TRANSFER, f"{name}: IMP and re-initialized controls",
                              _train_spec(p, spec.train, arch=spec.model.network,
                                          width=spec.model.width, dataset=m.data.name),
                              its + control))
    t = m.transfer
    tasks = {"halves_imp": (n // 2, 2), "labels_imp": (n // 2, 2), "optimizers_imp": (n, 2)}
    for key, (size, configs) in tasks.items():
        imp = getattr(t, key)
        its = configs * _sub_run_iterations(imp, t.train, size)
        transferred = (2 if key == "optimizers_imp" else 1) * (imp.levels + 1) * t.train.epochs \
            * iterations_per_epoch(size, t.train.batch_size)
        items.append(WorkItem(TICKET_TRANSFER, f"transfer {key.removesuffix('_imp')}",
                              _train_spec(p, t.train, arch=t.arch, width=None,
                                          dataset=m.data.name), its + transferred))
    return items


def _notebook11_items(p: Params, subset: int) -> list[WorkItem]:
    """Bain: LeNet-5 IMP rounds, random tickets, their surfaces."""
    b, lp = p.bain, p.landscape
    n = train_size(b.data.name, b.data.train_size)
    es = b.early_stopping
    if es.enabled:  # the validation split is carved from the training set, never trained on
        n -= min(es.validation_size, n - 1)
    ipe = iterations_per_epoch(n, b.train.batch_size)
    its = _sub_run_iterations(b.imp, b.train, n)
    random_levels = [lv for lv in p.levels(b.random_levels) if 1 <= lv <= b.imp.levels] \
        if b.random_levels != "all" else list(range(1, b.imp.levels + 1))
    its += len(random_levels) * b.train.epochs * ipe
    spec = UnitSpec("train_iter", b.model.network, b.model.width, b.data.name,
                    batch=b.train.batch_size, optimizer=b.train.optimizer)
    items = [WorkItem(TICKET_LANDSCAPES, "LeNet-5 IMP rounds and random tickets", spec, its)]
    if es.enabled:  # the validation loss after every epoch of every round (patience None)
        epochs = (b.imp.levels + 1 + len(random_levels)) * b.train.epochs
        items.append(WorkItem(TICKET_LANDSCAPES, "validation losses (early stopping)",
                              UnitSpec("test_eval", b.model.network, b.model.width, b.data.name,
                                       examples=es.validation_size,
                                       chunk=b.train.eval_batch_size), epochs))
    shown = [lv for lv in (b.show_levels if b.show_levels != "all" else range(b.imp.levels + 1))]
    surfaces = 2 * len([lv for lv in shown if lv >= 1]) + 1
    pool = test_size(b.data.name, b.data.test_size) if b.surface_split == "test" else subset
    ex = min(lp.surface_examples, pool)
    items.append(WorkItem(TICKET_LANDSCAPES, "surfaces", UnitSpec(
        "point", b.model.network, b.model.width, b.data.name, examples=ex, chunk=ex),
        surfaces * lp.surface_resolution ** 2))
    for size in sorted({min(s, pool) for s in b.subsample_sizes}):
        items.append(WorkItem(TICKET_LANDSCAPES, f"surface on {size} examples", UnitSpec(
            "point", b.model.network, b.model.width, b.data.name, examples=size, chunk=size),
            lp.surface_resolution ** 2))
    return items
