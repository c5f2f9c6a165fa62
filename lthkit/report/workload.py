"""How much work each notebook of a parameter file does, counted from the parameters alone.

`benchmarks/paper_time.py` multiplies these counts by unit costs measured on a device to project
how long a preset takes. Counting lives here, beside the code whose work it counts, so tests can
check it against what a small run really did.

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
from lthkit.config.training import ImpSection, TrainSection

__all__ = ["UnitSpec", "WorkItem", "count_work", "imp_iterations", "trajectory_points",
           "iterations_per_epoch", "train_size", "volume_point_count", "spectra_of_notebook08",
           "line_points", "SPLITS", "baseline_members",
           "baseline_schedule_groups"]

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


def volume_point_count(levels: Iterable[int]) -> int:
    """Distinct (point, space) pairs of Tables I, III, V: W_min(L) in level L space for L and
    L-1, RPr_{L-1}(min(L)) and Pr_L(min(L-1)) for each L."""
    levels = set(levels)
    solutions = levels | {lv - 1 for lv in levels}
    return len(solutions) + 2 * len(levels)


def line_points(n: int, margin: float) -> int:
    """Points of one line: `alpha_grid(n, margin)`'s length."""
    extra = math.ceil(margin * (n - 1) - 1e-9) if margin > 0 else 0
    return n + 2 * extra


def spectra_of_notebook08(p: Params) -> int:
    """Spectra notebook 08 adds to notebook 04's (shared cache): W_min(L), Pr_L at band levels
    outside the analysis levels, the band projections, every baseline at its levels and the
    points of Result 3's prune-fraction sweep."""
    levels = set(p.levels(p.analysis.levels, minimum=1))
    band = set(p.levels(p.hessian.band_levels, minimum=1))
    baseline_levels = set(p.levels(p.baselines.levels, minimum=1))
    new = 0
    for lv in sorted(levels | band):
        if lv not in levels:
            new += 2                       # W_min(L), Pr_L(min(L-1)) are not in notebook 04
        if lv in band:
            new += 1                       # the band-pruned projection
        if lv in baseline_levels and lv in levels:
            new += len(set(p.baselines.kinds))
    if p.hessian.sweep_fractions:  # Result 3's sweep: one spectrum per fraction
        sweep = p.hessian.sweep_level or min(levels)
        new += len(p.hessian.sweep_fractions) + (sweep - 1 not in {0, *levels})
    return new


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

    if "01_train_imp" in notebooks:
        its = sum(imp_iterations(lv, p.train.epochs, ipe, p.imp.rewind_iteration)
                  for lv in range(p.imp.levels + 1))
        items.append(WorkItem("01_train_imp", f"IMP: {p.imp.levels + 1} levels",
                              _train_spec(p, p.train), its))
        items.append(WorkItem("01_train_imp", "test-set evaluations", test_eval,
                              (p.imp.levels + 1) * evals_per_run(p.train)))

    if "02_baselines" in notebooks:
        items += _baseline_items(p, ipe, group_size, test_eval)

    analysis_nbs = {"03_distances_trajectories", "09_vgg16_appendix"} & notebooks
    for nb in sorted(analysis_nbs):
        kept = set(p.levels(p.imp.trajectory_levels))
        n = sum(trajectory_points(lv, p.imp, p.train.epochs, ipe) +
                trajectory_points(lv - 1, p.imp, p.train.epochs, ipe)
                for lv in levels if lv in kept and lv - 1 in kept)
        items.append(WorkItem(nb, "Fig 4 trajectories", UnitSpec(
            "point", p.model.network, p.model.width, p.data.name, examples=subset,
            chunk=a.batch_size), n))

    if {"04_hessian_volume", "09_vgg16_appendix"} & notebooks:
        nb = "04_hessian_volume" if "04_hessian_volume" in notebooks else "09_vgg16_appendix"
        items.append(WorkItem(nb, f"top-{hp.k} spectra (Tables I, III, V)", hvp,
                              volume_point_count(levels), per="products_per_spectrum"))
    if "04_hessian_volume" in notebooks:
        solutions = len({0, *levels})
        items.append(WorkItem("04_hessian_volume", "Hutchinson traces", hvp,
                              solutions * hp.trace_samples))
        items.append(WorkItem("04_hessian_volume", "SLQ densities", hvp,
                              solutions * hp.density_iterations * hp.density_runs))

    if "05_basin_radius" in notebooks:
        radii = 4 * len(levels)
        items.append(WorkItem("05_basin_radius", f"{radii} radii x {lp.radius_directions} "
                              "directions", point, radii * lp.radius_directions,
                              per="points_per_direction"))
        items.append(WorkItem("05_basin_radius", "own losses", point, radii))

    line_n = line_points(lp.line_points, lp.line_margin)
    baseline_levels = [lv for lv in p.levels(p.baselines.levels, minimum=1) if lv in levels]
    if "06_barriers" in notebooks:
        kinds = set(p.baselines.kinds)
        per_level = sum(len(pairs) for fig, pairs in _LINES.items()
                        if all(k in kinds for pair in pairs for k in pair if k not in _IMP))
        items.append(WorkItem("06_barriers", "lines", point,
                              line_n * (len(levels) + per_level * len(baseline_levels))))
        items.append(WorkItem("06_barriers", "Fig 12's lines on the test split (Result 4)",
                              point, line_n * len(levels)))
    if "09_vgg16_appendix" in notebooks:
        kinds = set(p.baselines.kinds) & {"random_reinit", "random_prune"}
        items.append(WorkItem("09_vgg16_appendix", "lines (Figs 28, 29, 31)", point,
                              line_n * (len(levels) + len(kinds) * len(baseline_levels))))
        items.append(WorkItem("09_vgg16_appendix", "spectra of W_RI, W_RP (Tables VIII, IX)",
                              hvp, len(kinds) * len(baseline_levels),
                              per="products_per_spectrum"))

    if "07_sublevel_sets" in notebooks:
        items.append(WorkItem("07_sublevel_sets", "Fig 13 plane", point,
                              lp.plane_resolution ** 2 + p.imp.levels + 1 + 4))
        surf = UnitSpec("point", p.model.network, p.model.width, p.data.name,
                        examples=min(lp.surface_examples, subset),
                        chunk=min(lp.surface_examples, subset))
        items.append(WorkItem("07_sublevel_sets", "filter-normalized surfaces", surf,
                              (len(levels) + 1) * lp.surface_resolution ** 2))
        for n in lp.surface_sweep:
            items.append(WorkItem("07_sublevel_sets", f"surface on {n} examples", UnitSpec(
                "point", p.model.network, p.model.width, p.data.name, examples=min(n, subset),
                chunk=min(n, subset)), lp.surface_resolution ** 2))

    if "08_pruning_choices" in notebooks:
        items.append(WorkItem("08_pruning_choices", "spectra of the pruning choices", hvp,
                              spectra_of_notebook08(p), per="products_per_spectrum"))

    if "10_ticket_transfer" in notebooks:
        items += _notebook10_items(p)
    if "11_ticket_landscapes" in notebooks:
        items += _notebook11_items(p, subset)
    return items


_IMP = ("imp", "proj")
_LINES = {"fig09": [("proj", "random_reinit")],
          "fig17": [("imp", "random_prune_oneshot"), ("proj", "random_prune")],
          "fig19": [("imp", "one_shot")]}


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
                    items.append(WorkItem("02_baselines", f"{', '.join(kinds)}: {n} group(s) "
                                          f"of {k}", spec, n * its))
        else:
            items.append(WorkItem("02_baselines", f"{', '.join(kinds)}: {len(group)} trainings",
                                  _train_spec(p, cfg), len(group) * its))
        items.append(WorkItem("02_baselines", f"test-set evaluations ({', '.join(kinds)})",
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
        control = spec.imp.levels * spec.train.epochs * iterations_per_epoch(n, spec.train.batch_size)
        items.append(WorkItem("10_ticket_transfer", f"{name}: IMP and re-initialized controls",
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
        items.append(WorkItem("10_ticket_transfer", f"transfer {key.removesuffix('_imp')}",
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
    items = [WorkItem("11_ticket_landscapes", "LeNet-5 IMP rounds and random tickets", spec, its)]
    if es.enabled:  # the validation loss after every epoch of every round (patience None)
        epochs = (b.imp.levels + 1 + len(random_levels)) * b.train.epochs
        items.append(WorkItem("11_ticket_landscapes", "validation losses (early stopping)",
                              UnitSpec("test_eval", b.model.network, b.model.width, b.data.name,
                                       examples=es.validation_size,
                                       chunk=b.train.eval_batch_size), epochs))
    shown = [lv for lv in (b.show_levels if b.show_levels != "all" else range(b.imp.levels + 1))]
    surfaces = 2 * len([lv for lv in shown if lv >= 1]) + 1
    pool = test_size(b.data.name, b.data.test_size) if b.surface_split == "test" else subset
    ex = min(lp.surface_examples, pool)
    items.append(WorkItem("11_ticket_landscapes", "surfaces", UnitSpec(
        "point", b.model.network, b.model.width, b.data.name, examples=ex, chunk=ex),
        surfaces * lp.surface_resolution ** 2))
    for size in sorted({min(s, pool) for s in b.subsample_sizes}):
        items.append(WorkItem("11_ticket_landscapes", f"surface on {size} examples", UnitSpec(
            "point", b.model.network, b.model.width, b.data.name, examples=size, chunk=size),
            lp.surface_resolution ** 2))
    return items
