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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch

from .context import Context
from .data import derive_seed
from .imp import ImpResults, SolutionFiles, train_solution, train_solutions_together
from .params import TrainSection
from .pruning import Mask, full_mask, keep_counts, magnitude_prune, masked_state, random_prune
from .store import RunStore

__all__ = ["KINDS", "SYMBOLS", "BaselineResults", "run_baselines", "baseline_plan", "BaselinePlan"]

MADE_BY = "notebooks/02_baselines.ipynb"
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

def baseline_plan(ctx: Context, imp: ImpResults, kind: str, level: int) -> BaselinePlan:
    """Mask, start point and schedule of `kind` at `level`, from the IMP run's files."""
    p = ctx.params
    k = p.imp.rewind_iteration
    m_level = imp.mask(level)
    makers: dict[str, Callable[[], tuple[Mask, dict, int, TrainSection]]] = {
        "one_shot": lambda: (magnitude_prune(imp.final(0), imp.mask(0), scope=p.imp.scope,
                                             keep=keep_counts(m_level, p.imp.scope)),
                             imp.rewind(), k, p.train),
        "fine_tune": lambda: (m_level, imp.final(level - 1), 0, fine_tune_schedule(p.train, p)),
        "lr_rewind": lambda: (m_level, imp.final(level - 1), k, p.train),
        "random_reinit": lambda: (m_level, _fresh_init(ctx, level), 0, p.train),
        "random_prune": lambda: (random_prune(imp.mask(level - 1), fraction=p.imp.prune_fraction,
                                              scope=p.imp.scope, generator=_gen(ctx, kind, level)),
                                 imp.rewind(), k, p.train),
        "random_prune_oneshot": lambda: (random_prune(full_mask(ctx.new_model()), scope=p.imp.scope,
                                                      keep=keep_counts(m_level, p.imp.scope),
                                                      generator=_gen(ctx, kind, level)),
                                         imp.rewind(), k, p.train),
    }
    files = BaselineResults(ctx.store).files(kind, level)
    mask, start, start_it, cfg = makers[kind]()
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


def _spec(ctx: Context, plan: BaselinePlan) -> dict:
    """What decides a baseline beyond the run's training parameters (checked on reuse)."""
    return {"kind": plan.kind, "level": plan.level, "start_iteration": plan.start_iteration,
            "epochs": plan.cfg.epochs, "lr": plan.cfg.lr, "milestones": plan.cfg.milestones}


def run_baselines(ctx: Context, kinds: list[str] | None = None, levels: list[int] | None = None,
                  progress: bool = True, together: bool | None = None) -> BaselineResults:
    """Train every requested baseline that is not finished yet; finished ones are read back.

    At each level, baselines that share a schedule (all but fine-tuning and re-initialization
    start at iteration k) train together in one vmapped model when `together` is on (default:
    `baselines.train_together`; auto = off, as measured slower everywhere so far), else one after
    another.
    """
    p = ctx.params
    imp = ImpResults(ctx.store)
    kinds = list(kinds or p.baselines.kinds)
    levels = levels or p.levels(p.baselines.levels, minimum=1)
    imp.require_levels(sorted({0, *levels, *(lv - 1 for lv in levels)}), MADE_BY)
    if together is None:
        together = p.baselines.train_together == "yes"
    results = BaselineResults(ctx.store)
    for level in levels:
        plans = []
        for kind in kinds:
            files = results.files(kind, level)
            if not files.done():
                plan = baseline_plan(ctx, imp, kind, level)
                ctx.store.claim(files.folder, _spec(ctx, plan), p.source)
                plans.append(plan)
        for group in _schedule_groups(plans) if together else [[plan] for plan in plans]:
            for plan, metrics in zip(group, _train_group(ctx, results, group, progress)):
                f = metrics["final"]
                print(f"level {level:2d} {SYMBOLS[plan.kind]:6s} ({plan.kind}): "
                      f"{100 * f['density']:6.2f}% left, train loss {f['train_loss']:.4f}, "
                      f"test acc {f['test_acc']:.4f}")
    return results


def _schedule_groups(plans: list[BaselinePlan]) -> list[list[BaselinePlan]]:
    """Plans that share start iteration and schedule, grouped (each group trains together)."""
    groups: dict[tuple, list[BaselinePlan]] = {}
    for plan in plans:
        key = (plan.start_iteration, plan.cfg.model_dump_json())
        groups.setdefault(key, []).append(plan)
    return list(groups.values())


def _train_group(ctx: Context, results: BaselineResults, group: list[BaselinePlan],
                 progress: bool) -> list[dict]:
    jobs = [{"files": results.files(plan.kind, plan.level), "mask": plan.mask, "start": plan.start,
             "tag": f"baselines/{plan.kind}/level_{plan.level:02d}"} for plan in group]
    if len(group) == 1:
        j = jobs[0]
        return [train_solution(ctx, j["files"], tag=j["tag"], mask=j["mask"], start=j["start"],
                               start_iteration=group[0].start_iteration, cfg=group[0].cfg,
                               progress=progress)]
    names = "-".join(plan.kind for plan in group)
    checkpoint = ctx.store.root / "baselines" / f"together_level_{group[0].level:02d}_{names}.pt"
    return train_solutions_together(ctx, jobs, group[0].cfg, group[0].start_iteration, checkpoint,
                                    progress=progress)
