"""The paper's comparison solutions, each at the sparsity of an IMP level L (Section III).

| kind                   | symbol    | mask                                    | start                   | schedule       |
|------------------------|-----------|-----------------------------------------|-------------------------|----------------|
| one_shot               | W_OS(L)   | magnitude pruning of W_min(0), one step | W_rewind                | from k         |
| fine_tune              | W_FT(L)   | m_L                                     | m_L ⊙ W_min(L-1)        | fixed small lr |
| lr_rewind              |           | m_L                                     | m_L ⊙ W_min(L-1)        | from k         |
| random_reinit          | W_RI(L)   | m_L                                     | a fresh initialization  | from 0         |
| random_prune           | W_RP(L)   | random pruning of m_{L-1}, IMP's count  | W_rewind                | from k         |
| random_prune_oneshot   | W_RP'(L)  | random mask of m_L's sparsity, dense    | W_rewind                | from k         |

All reuse the IMP run's data, W_init, W_rewind, masks and solutions, and are stored beside them
in baselines/<kind>/level_LL/ with the same files (resumable the same way). "From k" is the
schedule of weight rewinding: iteration k to the end, so every kind but fine-tuning trains as
long as IMP's level L did; random re-initialization trains the whole schedule from scratch.

Once IMP's masks exist the trainings are independent of each other: `run_baselines` packs those
of one schedule, at every level, into groups of up to `baselines.group_size` and trains each group
as one fused network (`training.train_group`); every member is written where it would be alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

import pandas as pd
import torch

from lthkit.config.params import Params
from lthkit.config.seeds import derive_seed
from lthkit.config.series import BASELINES, notebook_file
from lthkit.config.training import TrainSection
from lthkit.nets.pruning import (Mask, full_mask, keep_counts, magnitude_prune, masked_state,
                                 random_prune)
from lthkit.store.files import load_tensors
from lthkit.store.layout import RunStore
from lthkit.train.context import Context
from lthkit.train.imp import (ImpResults, SolutionFiles, finished_imp_files, scratch_run,
                              solution_files, train_solution, train_solutions_together,
                              write_unit_files)
from lthkit.train.training import probe_group_sizes

if TYPE_CHECKING:
    from lthkit.platform.executor import Executor

__all__ = ["KINDS", "SYMBOLS", "BaselineResults", "run_baselines", "baseline_plan", "BaselinePlan",
           "baseline_schedule", "schedule_classes", "pack_groups", "auto_group_size", "GroupChoice",
           "pending_baselines", "train_baselines", "BaselineUnit", "train_baseline_unit",
           "baseline_units", "run_baselines_replicates"]

MADE_BY = notebook_file(BASELINES)
KINDS = ("one_shot", "fine_tune", "lr_rewind", "random_reinit", "random_prune",
         "random_prune_oneshot")
SYMBOLS = {"imp": "W_min", "one_shot": "W_OS", "fine_tune": "W_FT", "lr_rewind": "W_LRR",
           "random_reinit": "W_RI", "random_prune": "W_RP", "random_prune_oneshot": "W_RP'"}


@dataclass
class BaselinePlan:
    """How one baseline at one level is made: its mask, start point, start iteration, schedule."""

    kind: str
    level: int
    mask: Mask
    start: dict[str, torch.Tensor]
    start_iteration: int
    cfg: TrainSection


class BaselineResults:
    """Read access to the baselines of a run folder."""

    def __init__(self, store: RunStore):
        self.store = store

    def files(self, kind: str, level: int) -> SolutionFiles:
        if kind not in KINDS:
            raise ValueError(f"unknown baseline kind {kind!r}; known: {', '.join(KINDS)}")
        return SolutionFiles(self.store.baseline_dir(kind, level), made_by=MADE_BY)

    def final(self, kind: str, level: int) -> dict[str, torch.Tensor]:
        return self.files(kind, level).final()

    def mask(self, kind: str, level: int) -> Mask:
        return self.files(kind, level).mask()

    def metrics(self, kind: str, level: int) -> dict:
        return self.files(kind, level).metrics()

    def available(self) -> list[tuple[str, int]]:
        """(kind, level) of every finished baseline."""
        root = self.store.root / "baselines"
        found = []
        for kind in KINDS:
            for folder in sorted((root / kind).glob("level_*")) if (root / kind).exists() else []:
                level = int(folder.name.split("_")[1])
                if self.files(kind, level).done():
                    found.append((kind, level))
        return found

    def levels(self) -> list[int]:
        return sorted({level for _, level in self.available()})

    def summary(self, imp: ImpResults | None = None) -> pd.DataFrame:
        """Final training loss and test accuracy of every solution, one row per (strategy, level)."""
        rows = []
        for kind, level in self.available():
            f = self.metrics(kind, level)["final"]
            rows.append(_row(kind, level, f))
        if imp is not None:
            for level in imp.levels_done():
                rows.append(_row("imp", level, imp.metrics(level)["final"]))
        return pd.DataFrame(rows).sort_values(["level", "strategy"]).reset_index(drop=True)


def _row(kind: str, level: int, final: dict) -> dict:
    return {"strategy": kind, "symbol": SYMBOLS[kind], "level": level,
            "weights_left_%": 100 * final["density"], "train_loss": final["train_loss"],
            "train_acc": final["train_acc"], "test_acc": final["test_acc"]}


# --- making them --------------------------------------------------------------------------------

def baseline_schedule(p: Params, kind: str) -> tuple[int, TrainSection]:
    """Start iteration and training schedule of `kind`: "from k" (weight rewinding's), the whole
    schedule from 0 (random re-initialization), or fine-tuning's own."""
    if kind == "fine_tune":
        return 0, fine_tune_schedule(p.train, p)
    if kind == "random_reinit":
        return 0, p.train
    return p.imp.rewind_iteration, p.train


def baseline_plan(ctx: Context, imp: ImpResults, kind: str, level: int) -> BaselinePlan:
    """Mask, start point and schedule of `kind` at `level`, from the IMP run's files."""
    p = ctx.params
    m_level = imp.mask(level)
    makers: dict[str, Callable[[], tuple[Mask, dict]]] = {
        "one_shot": lambda: (magnitude_prune(imp.final(0), imp.mask(0), scope=p.imp.scope,
                                             keep=keep_counts(m_level, p.imp.scope)), imp.rewind()),
        "fine_tune": lambda: (m_level, imp.final(level - 1)),
        "lr_rewind": lambda: (m_level, imp.final(level - 1)),
        "random_reinit": lambda: (m_level, _fresh_init(ctx, level)),
        "random_prune": lambda: (random_prune(imp.mask(level - 1), fraction=p.imp.prune_fraction,
                                              scope=p.imp.scope, generator=_gen(ctx, kind, level)),
                                 imp.rewind()),
        "random_prune_oneshot": lambda: (random_prune(full_mask(ctx.new_model()), scope=p.imp.scope,
                                                      keep=keep_counts(m_level, p.imp.scope),
                                                      generator=_gen(ctx, kind, level)),
                                         imp.rewind()),
    }
    files = BaselineResults(ctx.store).files(kind, level)
    mask, start = makers[kind]()
    start_it, cfg = baseline_schedule(p, kind)
    if files.mask_file.exists():  # a resumed baseline keeps the mask it started with
        mask = files.mask()
    return BaselinePlan(kind, level, mask, masked_state(start, mask), start_it, cfg)


def fine_tune_schedule(train: TrainSection, p) -> TrainSection:
    """Fine-tuning: a small fixed learning rate for `baselines.fine_tune_epochs` epochs."""
    return train.model_copy(update={"lr": p.baselines.fine_tune_lr, "milestones": [],
                                    "epochs": p.baselines.fine_tune_epochs})


def _gen(ctx: Context, kind: str, level: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(ctx.params.run.seed, "baseline", kind, level))


def _fresh_init(ctx: Context, level: int) -> dict[str, torch.Tensor]:
    """A new random initialization, different from W_init (its own seed per level)."""
    model = ctx.new_model(init_seed=derive_seed(ctx.params.run.seed, "reinit", level))
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _spec(kind: str, level: int, start_iteration: int, cfg: TrainSection) -> dict:
    """What decides a baseline beyond the run's training parameters (checked on reuse)."""
    return {"kind": kind, "level": level, "start_iteration": start_iteration,
            "epochs": cfg.epochs, "lr": cfg.lr, "milestones": cfg.milestones}


def run_baselines(ctx: Context, kinds: list[str] | None = None, levels: list[int] | None = None,
                  progress: bool = True, together: bool | None = None,
                  group_size: int | str | None = None) -> BaselineResults:
    """Train every requested baseline that is not finished yet; finished ones are read back.

    Once IMP's masks exist, every (kind, level) training is independent: the trainings at one
    point of one schedule are packed into groups of up to `group_size` (default
    `baselines.group_size`; auto probes the device and prints why) and each group trains as one
    fused network (`training.train_group`). Every member resumes from, and writes, its own files
    in baselines/<kind>/level_LL/, as it would alone; a finished one is never retrained.
    `together=False` (older callers) means group size 1.
    """
    pending = pending_baselines(ctx, kinds, levels)
    train_baselines(ctx, pending, progress, together, group_size)
    return BaselineResults(ctx.store)


def pending_baselines(ctx: Context, kinds: list[str] | None = None,
                      levels: list[int] | None = None) -> list[tuple[str, int]]:
    """The requested (kind, level) not finished yet (default: `baselines.kinds` at
    `baselines.levels`), each claimed (spec.json); the IMP levels they need must be trained."""
    p = ctx.params
    imp = ImpResults(ctx.store)
    kinds = list(kinds or p.baselines.kinds)
    levels = levels or p.levels(p.baselines.levels, minimum=1)
    imp.require_levels(sorted({0, *levels, *(lv - 1 for lv in levels)}), MADE_BY)
    results = BaselineResults(ctx.store)
    pending = [(kind, level) for level in levels for kind in kinds
               if not results.files(kind, level).done()]
    for kind, level in pending:
        ctx.store.claim(results.files(kind, level).folder,
                        _spec(kind, level, *baseline_schedule(p, kind)), p.source)
    return pending


def train_baselines(ctx: Context, pending: list[tuple[str, int]], progress: bool = True,
                    together: bool | None = None, group_size: int | str | None = None) -> None:
    """Train the (kind, level) of `pending` in groups of one schedule (`run_baselines`)."""
    imp = ImpResults(ctx.store)
    results = BaselineResults(ctx.store)
    classes = schedule_classes(ctx, results, pending)
    choice = _resolve_group_size(ctx, classes, together, group_size)
    for group in pack_groups(classes, choice.size):
        plans = [baseline_plan(ctx, imp, kind, level) for kind, level in group]
        for plan, metrics in zip(plans, _train_group(ctx, results, plans, progress,
                                                     choice.channels_last)):
            f = metrics["final"]
            print(f"level {plan.level:2d} {SYMBOLS[plan.kind]:6s} ({plan.kind}): "
                  f"{100 * f['density']:6.2f}% left, train loss {f['train_loss']:.4f}, "
                  f"test acc {f['test_acc']:.4f}")


@dataclass
class ScheduleClass:
    """Trainings that can share a group: one schedule, and all at one iteration of it."""

    cfg: TrainSection
    iteration: int
    steps: int  # iterations each has left
    members: list[tuple[str, int]]  # (kind, level)


def schedule_classes(ctx: Context, results: BaselineResults,
                     pending: list[tuple[str, int]]) -> list[ScheduleClass]:
    """`pending` (kind, level) split by schedule and by the iteration each is at (a resumed one
    is where its resume.pt says: members of a group killed mid-save may differ by an epoch)."""
    p = ctx.params
    classes: dict[tuple[str, int], ScheduleClass] = {}
    for kind, level in pending:
        start_it, cfg = baseline_schedule(p, kind)
        resume = results.files(kind, level).resume_file
        at = load_tensors(resume)["iteration"] if resume.exists() else start_it
        key = (cfg.model_dump_json(), at)
        if key not in classes:
            total = cfg.epochs * ctx.data.iterations_per_epoch(cfg.batch_size)
            classes[key] = ScheduleClass(cfg, at, max(0, total - at), [])
        classes[key].members.append((kind, level))
    return list(classes.values())


def pack_groups(classes: list[ScheduleClass], size: int) -> list[list[tuple[str, int]]]:
    """Each class cut into the fewest groups of at most `size`, as even as can be."""
    groups = []
    for c in classes:
        n = len(c.members)
        count = math.ceil(n / size)
        bounds = [round(i * n / count) for i in range(count + 1)]
        groups += [c.members[a:b] for a, b in zip(bounds, bounds[1:])]
    return groups


class GroupChoice(NamedTuple):
    """How baseline trainings are grouped: up to `size` at once, the fused network in the layout
    the group probe measured faster (`channels_last`; None: `train.channels_last`)."""

    size: int
    channels_last: bool | None = None


def _resolve_group_size(ctx: Context, classes: list[ScheduleClass], together: bool | None,
                        group_size: int | str | None) -> GroupChoice:
    """The group size asked for (argument, else `baselines.group_size`), auto resolved."""
    setting = ctx.params.baselines.group_size
    if group_size is not None:
        setting = group_size
    elif together is False:
        setting = 1
    elif together is True and setting == 1:
        setting = "auto"
    if setting != "auto":
        return GroupChoice(int(setting))
    if not ctx.params.model.kit_network:
        return GroupChoice(1)  # fusion is proven for the kit's own networks only (train.fused)
    if max((len(c.members) for c in classes), default=0) <= 1:
        return GroupChoice(1)  # nothing to group: no probe
    return auto_group_size(ctx, classes)


def auto_group_size(ctx: Context, classes: list[ScheduleClass]) -> GroupChoice:
    """The group size a short probe on the device projects fastest for `classes`, with the layout
    it measured faster for that size; prints why."""
    p = ctx.params
    work = [(len(c.members), c.steps) for c in classes]
    probe = probe_group_sizes(ctx.new_model, tuple(ctx.data.train_x.shape[1:]), p.train, ctx.device,
                              max_k=max(n for n, _ in work), memory_fraction=p.baselines.group_memory)
    k = probe.best(work, p.baselines.group_min_speedup)
    alone = probe.projected_seconds(1, work)
    chosen = probe.projected_seconds(k, work)
    fastest = probe.best(work)
    trainings = sum(n for n, _ in work)
    if k == 1 and fastest != 1:
        speedup = alone / probe.projected_seconds(fastest, work)
        why = (f"K = {fastest} was projected only {speedup:.2f}x faster, below "
               f"baselines.group_min_speedup {p.baselines.group_min_speedup:g}")
    elif k == 1:
        why = "no group size was projected faster than one after another"
    else:
        why = (f"{trainings} trainings in {sum(math.ceil(n / k) for n, _ in work)} groups, "
               f"projected {chosen / 60:.1f} min against {alone / 60:.1f} min one after another "
               f"({alone / chosen:.2f}x)")
    print(f"baselines.group_size auto: K = {k}: {why}\n{probe.table(work)}")
    return GroupChoice(k, probe.channels_last(k))


def _train_group(ctx: Context, results: BaselineResults, group: list[BaselinePlan],
                 progress: bool, channels_last: bool | None = None) -> list[dict]:
    jobs = [{"files": results.files(plan.kind, plan.level), "mask": plan.mask, "start": plan.start,
             "start_iteration": plan.start_iteration,
             "tag": f"baselines/{plan.kind}/level_{plan.level:02d}"} for plan in group]
    if len(group) == 1:
        j = jobs[0]
        return [train_solution(ctx, j["files"], tag=j["tag"], mask=j["mask"], start=j["start"],
                               start_iteration=j["start_iteration"], cfg=group[0].cfg,
                               progress=progress)]
    return train_solutions_together(ctx, jobs, group[0].cfg, progress=progress,
                                    channels_last=channels_last)


# --- the groups of baseline trainings as units of an executor (lthkit.platform.executor) ---------

@dataclass(frozen=True)
class BaselineUnit:
    """Baselines of one replicate that train together on one worker: a group (or, with
    `baselines.group_size` auto, a schedule class that the worker packs after its own probe),
    with the IMP files they start from and any files of theirs already begun. `params` are the
    run's, not the replicate's."""

    params: Params
    replicate: int
    members: tuple[tuple[str, int], ...]
    group_size: int | str
    given: dict[str, bytes]

    @property
    def label(self) -> str:
        return (f"replicate {self.replicate} baselines "
                + "+".join(f"{kind}@{level}" for kind, level in self.members))


def train_baseline_unit(unit: BaselineUnit) -> dict[str, bytes]:
    """Train a unit's baselines in a scratch run folder of the worker; return their files."""
    with scratch_run(unit.params, unit.replicate, unit.given) as ctx:
        train_baselines(ctx, list(unit.members), progress=False, group_size=unit.group_size)
        results = BaselineResults(ctx.store)
        files = [f for kind, level in unit.members
                 for f in solution_files(results.files(kind, level).folder)]
        return {p.relative_to(ctx.store.root).as_posix(): p.read_bytes() for p in files}


def baseline_units(run_params: Params, replicate: int) -> list[BaselineUnit]:
    """The units of one replicate's unfinished baselines (claimed here, in the driver);
    `run_params` are the run's (the unit derives the replicate's seed itself)."""
    from lthkit.train.context import open_run

    ctx = open_run(run_params, needed_by=MADE_BY, replicate=replicate)
    p = ctx.params
    pending = pending_baselines(ctx)
    if not pending:
        return []
    results = BaselineResults(ctx.store)
    levels = {level for _, level in pending}
    imp_files = finished_imp_files(ctx.store, list(range(max(levels) + 1)), trajectory=False)
    classes = schedule_classes(ctx, results, pending)
    setting = p.baselines.group_size
    groups = [c.members for c in classes] if setting == "auto" else pack_groups(classes, setting)
    units = []
    for members in groups:
        begun = {}
        for kind, level in members:
            files = results.files(kind, level)
            for path in (files.mask_file, files.resume_file):
                if path.exists():
                    begun[path.relative_to(ctx.store.root).as_posix()] = path.read_bytes()
        units.append(BaselineUnit(run_params, replicate, tuple(members), setting,
                                  {**imp_files, **begun}))
    return units


def run_baselines_replicates(params: Params, executor: "Executor",
                             train_unit: Callable[[BaselineUnit], dict[str, bytes]]
                             = train_baseline_unit) -> list[BaselineUnit]:
    """Train every replicate's unfinished baselines (`baselines.kinds` at `baselines.levels`) as
    units of `executor`: each a group of one schedule, trained on a worker and written here into
    the replicate's folder as it finishes; finished baselines are not trained again. Returns the
    units run."""
    from lthkit.train.context import open_run

    stores, units = [], []
    for r in range(params.run.replicates):
        store = open_run(params, needed_by=MADE_BY, replicate=r).store
        for unit in baseline_units(params, r):
            stores.append(store)
            units.append(unit)
    if units:
        executor.map(train_unit, units, desc="baseline groups",
                     on_result=lambda i, files: write_unit_files(stores[i], files, "baselines"))
    return units
