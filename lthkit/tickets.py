"""Lottery tickets beyond the main paper: MNIST tickets and their transfer, early-bird tickets
(the IE643 report, after Frankle & Carbin 2019, Morcos et al. 2019, You et al. 2020), and
winning against random tickets of LeNet-5 on CIFAR-10 (Bain).

Every experiment is an IMP run of its own (`context.sub_run`) inside the run folder:

    <run>/mnist/mlp, <run>/mnist/lenet5            tickets with rewinding to initialization
    <run>/mnist/transfer/<config>                   tickets of each transfer configuration
    <run>/mnist/transfer/<target>/from_<source>/    a source ticket retrained on the target
    <run>/bain                                      LeNet-5 tickets and random tickets

so each is resumable, and reused on the next run, like the main IMP run. Early-bird tickets need
per-epoch weights: the MNIST MLP's dense run (weight masks) and the main run's dense level 0
(a BatchNorm network: You et al.'s channel masks).

Tables keep both sides of each published statement in columns of one row per level (the
ticket and its control, the transferred ticket and the target's own, the IMP and the random
ticket's surface), so a claim can be read off level by level.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from .baselines import BaselineResults, baseline_plan, run_baselines
from .context import Context, sub_run
from .data import ImageData, derive_seed
from .imp import ImpResults, SolutionFiles, finish_solution, run_imp, train_solution
# run_imp's own steps, reused so that Bain's rounds differ from run_imp only in the kept epoch
from .imp import _cpu_state, _start_model
from .params import EarlyBirdSection, ImpSection, ModelSection, Params, TrainSection
from .pruning import Mask, hamming_distance, magnitude_prune
from .store import load_json, load_tensors, save_json, save_tensors
from .training import Checkpoint, evaluate, train

__all__ = ["mnist_tickets", "TransferTask", "transfer_tasks", "run_transfer", "transfer_table",
           "transfer_summary", "iteration_levels", "iteration_histories",
           "bn_scale_names", "channel_masks", "weight_masks", "mask_distances", "early_bird_rule",
           "drawn_epoch", "settled_epoch", "weight_early_bird", "channel_early_bird",
           "channel_distance_matrix", "main_run_trajectory", "early_birds", "early_bird_summary",
           "split_validation", "EarlyStopper", "train_early_stopped", "bain_tickets",
           "bain_protocol", "accuracy_table", "tickets_table", "TransferResult", "RANDOM_TICKET",
           "bain_pairs", "shown_levels", "ticket_histories", "kept_iterations", "ticket_surfaces",
           "surface_stats", "surface_table", "sweep_sizes", "sweep_level"]

MADE_BY_10 = "notebooks/10_ticket_transfer.ipynb"
MADE_BY_11 = "notebooks/11_ticket_landscapes.ipynb"
RANDOM_TICKET = "random_prune_oneshot"  # Bain's random ticket: a random mask of m_L's layer counts
EARLY_STOPPING_FILE = "early_stopping.json"  # beside a solution kept by early stopping


# --- MNIST tickets (IE643 Table 1) --------------------------------------------------------------

def mnist_tickets(ctx: Context, arch: str, progress: bool = True) -> Context:
    """IMP (rewinding to initialization) and the random re-initialization control on MNIST."""
    p = ctx.params.mnist
    spec = getattr(p, arch)
    sub = sub_run(ctx, f"mnist/{arch}", data=p.data, model=spec.model, train=spec.train,
                  imp=spec.imp, baselines=ctx.params.baselines.model_copy(
                      update={"kinds": ["random_reinit"], "levels": "all"}))
    run_imp(sub, progress=progress)
    run_baselines(sub, progress=progress, together=False)
    return sub


def _kept_epoch(files: SolutionFiles) -> int | None:
    """The epoch early stopping kept for a solution (None: it keeps its last epoch)."""
    path = files.folder / EARLY_STOPPING_FILE
    return int(load_json(path)["best_epoch"]) if path.exists() else None


def tickets_table(sub: Context, control: str = "random_reinit") -> pd.DataFrame:
    """Test accuracy of the IMP ticket and of the control at every level, with weights left.

    `ticket_vs_dense` is the ticket's test accuracy minus the dense network's (level 0): the
    "commensurate accuracy" of the hypothesis, read off per level. With early stopping, the
    epochs kept for each are given too.
    """
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    rows = []
    levels = imp.levels_done()
    dense = imp.metrics(0)["final"]["test_acc"] if levels else None
    for level in levels:
        f = imp.metrics(level)["final"]
        row = {"level": level, "weights_left_%": 100 * f["density"],
               "ticket_test_acc": f["test_acc"], "ticket_train_loss": f["train_loss"],
               "ticket_vs_dense": f["test_acc"] - dense}
        kept = _kept_epoch(imp.level(level))
        if kept is not None:
            row["ticket_kept_epoch"] = kept
        if (control, level) in base.available():
            g = base.metrics(control, level)["final"]
            row |= {"control_test_acc": g["test_acc"], "control_train_loss": g["train_loss"]}
            kept = _kept_epoch(base.files(control, level))
            if kept is not None:
                row["control_kept_epoch"] = kept
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")


def iteration_levels(levels: Sequence[int]) -> list[int]:
    """The levels whose training curves are drawn: the dense one, the middle one and the last."""
    if not levels:
        return []
    return sorted({levels[0], levels[len(levels) // 2], levels[-1]})


def iteration_histories(sub: Context) -> dict[str, list[dict]]:
    """Per-epoch records of the levels of `iteration_levels`, labelled by % of weights left
    (the report's Figs 1b and 2b)."""
    imp = ImpResults(sub.store)
    out = {}
    for level in iteration_levels(imp.levels_done()):
        metrics = imp.metrics(level)
        out[f"{100 * metrics['final']['density']:.1f}% left"] = metrics["history"]
    return out


# --- transfer (Morcos et al. 2019, the report's tasks 1-3) ----------------------------------------

@dataclass(frozen=True)
class TransferConfig:
    """One training configuration: which part of the data, which optimizer."""

    name: str
    select: Callable[[ImageData], ImageData] | None
    optimizer: str


@dataclass(frozen=True)
class TransferTask:
    """A ticket found on `source` retrained on `target`, against `target`'s own ticket."""

    name: str
    source: TransferConfig
    target: TransferConfig
    imp_key: str  # which ImpSection of params.mnist.transfer the task uses


def transfer_tasks(seed: int) -> list[TransferTask]:
    """The report's three tasks: halves of the data, digits 0-4 -> 5-9, SGD <-> Adam."""
    half = [TransferConfig(f"half{h}", lambda d, h=h: d.train_half(h, seed), "adam") for h in (0, 1)]
    low = TransferConfig("digits0-4", lambda d: d.with_classes([0, 1, 2, 3, 4]), "adam")
    high = TransferConfig("digits5-9", lambda d: d.with_classes([5, 6, 7, 8, 9]), "adam")
    sgd, adam = TransferConfig("sgd", None, "sgd"), TransferConfig("adam", None, "adam")
    return [TransferTask("halves", half[0], half[1], "halves_imp"),
            TransferTask("labels", low, high, "labels_imp"),
            TransferTask("sgd_to_adam", sgd, adam, "optimizers_imp"),
            TransferTask("adam_to_sgd", adam, sgd, "optimizers_imp")]


def _config_run(ctx: Context, task: TransferTask, config: TransferConfig) -> Context:
    t = ctx.params.mnist.transfer
    imp: ImpSection = getattr(t, task.imp_key)
    return sub_run(ctx, f"mnist/transfer/{task.imp_key.removesuffix('_imp')}_{config.name}",
                   select=config.select, data=ctx.params.mnist.data, model=ModelSection(arch=t.arch),
                   train=_train_for(t.train, t.sgd_lr, t.sgd_momentum, config.optimizer), imp=imp)


def _train_for(adam: TrainSection, sgd_lr: float, sgd_momentum: float,
               optimizer: str) -> TrainSection:
    """The Adam recipe, or the same with SGD at `sgd_lr` and `sgd_momentum` (task 3)."""
    if optimizer == "adam":
        return adam
    return adam.model_copy(update={"optimizer": "sgd", "lr": sgd_lr, "momentum": sgd_momentum})


@dataclass
class TransferResult:
    task: TransferTask
    source: Context
    target: Context

    def transferred(self, level: int) -> SolutionFiles:
        return SolutionFiles(self.target.store.root / f"from_{self.task.source.name}" /
                             f"level_{level:02d}", made_by=MADE_BY_10)


def run_transfer(ctx: Context, task: TransferTask, progress: bool = True) -> TransferResult:
    """Find tickets on source and target, then retrain each source ticket on the target.

    The retrained ticket starts from the source's mask m_L and the source's initialization (the
    rewind point of these runs is iteration 0) and trains with the target's data and optimizer.
    """
    source, target = _config_run(ctx, task, task.source), _config_run(ctx, task, task.target)
    for sub in (source, target):
        run_imp(sub, progress=progress)
    result = TransferResult(task, source, target)
    src = ImpResults(source.store)
    init = src.init()
    for level in src.levels_done():
        files = result.transferred(level)
        if not files.done():
            train_solution(target, files, tag=f"transfer/{task.name}/level_{level:02d}",
                           mask=src.mask(level), start=init, start_iteration=0, progress=progress)
    return result


def transfer_table(result: TransferResult) -> pd.DataFrame:
    """Per level: the target's own ticket against the transferred source ticket (test accuracy),
    and their difference (transferred minus own: the report's "generalizes well" per level)."""
    own = ImpResults(result.target.store)
    rows = []
    for level in own.levels_done():
        f = own.metrics(level)["final"]
        row = {"task": result.task.name, "level": level, "weights_left_%": 100 * f["density"],
               "target_ticket_test_acc": f["test_acc"]}
        files = result.transferred(level)
        if files.done():
            row["transferred_ticket_test_acc"] = files.metrics()["final"]["test_acc"]
            row["transferred_minus_target"] = row["transferred_ticket_test_acc"] - f["test_acc"]
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every task's table in one, indexed by (task, level)."""
    return pd.concat(list(tables.values())).set_index(["task", "level"])


# --- early-bird tickets (You et al. 2020) ---------------------------------------------------------
# You et al. draw a channel mask at every epoch (the fraction p of BatchNorm channels with the
# smallest |gamma|, ranked over the whole network), keep the distances between consecutive
# epochs' masks in a FIFO queue of length l = 5, and draw the ticket, during training, at the
# first epoch where the largest distance in the queue is below epsilon = 0.1. (Their released
# code measures the newest mask against each of the queue's older ones instead; with masks that
# move little per epoch the two agree to within an epoch or so.)

def bn_scale_names(model: nn.Module) -> list[str]:
    """State-dict names of the BatchNorm scaling factors gamma, in module order."""
    return [f"{name}.weight" for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]


def _scores_mask(state: Mapping[str, torch.Tensor], names: Sequence[str], fraction: float) -> Mask:
    """Global magnitude pruning of `fraction` of the tensors `names` of a state dict."""
    values = {n: state[n] for n in names}
    dense = {n: torch.ones_like(v, dtype=torch.bool) for n, v in values.items()}
    return magnitude_prune(values, dense, fraction=fraction, scope="global")


def channel_masks(files: SolutionFiles, names: Sequence[str], ratio: float
                  ) -> list[tuple[float, Mask]]:
    """(epoch, channel mask) along a run's trajectory: the fraction `ratio` of BatchNorm channels
    with the smallest |gamma|, ranked over all layers together (You et al.)."""
    if not names:
        raise ValueError("channel masks need BatchNorm scaling factors; this network has none")
    return [(epoch, _scores_mask(state, names, ratio)) for epoch, state in files.trajectory()]


def weight_masks(files: SolutionFiles, fraction: float) -> Iterator[tuple[float, Mask]]:
    """(epoch, weight mask) along a run's trajectory: global magnitude pruning of `fraction` of
    the prunable weights, one epoch at a time (the masks of a large network are not all kept)."""
    names = list(files.mask())
    for epoch, state in files.trajectory():
        yield epoch, _scores_mask(state, names, fraction)


def mask_distances(masks: Iterable[tuple[float, Mask]]) -> pd.DataFrame:
    """Normalized Hamming distance between each epoch's mask and the previous epoch's."""
    rows, previous = [], None
    for epoch, mask in masks:
        if previous is not None:
            rows.append({"epoch": epoch, "distance": hamming_distance(previous, mask)})
        previous = mask
    return pd.DataFrame(rows, columns=["epoch", "distance"])


def early_bird_rule(distances: pd.DataFrame, window: int, epsilon: float) -> pd.DataFrame:
    """You et al.'s rule on a table of consecutive distances: `window_max` is the largest of the
    last `window` distances (NaN until there are that many), `drawn` whether it is < epsilon."""
    out = distances.copy()
    out["window_max"] = out["distance"].rolling(window, min_periods=window).max()
    out["drawn"] = out["window_max"] < epsilon
    return out


def drawn_epoch(table: pd.DataFrame) -> float | None:
    """The epoch at which the early-bird ticket is drawn during training (None: never)."""
    drawn = table.loc[table["drawn"], "epoch"]
    return float(drawn.iloc[0]) if len(drawn) else None


def settled_epoch(table: pd.DataFrame, epsilon: float) -> float | None:
    """In hindsight: the first epoch from which the distance stays under epsilon to the end."""
    below = (table["distance"] < epsilon).to_numpy()
    for i in range(len(below)):
        if below[i:].all():
            return float(table["epoch"].iloc[i])
    return None


def weight_early_bird(files: SolutionFiles, cfg: EarlyBirdSection) -> pd.DataFrame:
    """Distances between consecutive epochs' weight masks, with You et al.'s rule applied."""
    return early_bird_rule(mask_distances(weight_masks(files, cfg.prune_fraction)), cfg.window,
                           cfg.epsilon)


def channel_early_bird(masks: Sequence[tuple[float, Mask]], cfg: EarlyBirdSection) -> pd.DataFrame:
    """Distances between consecutive epochs' channel masks, with You et al.'s rule applied."""
    return early_bird_rule(mask_distances(masks), cfg.window, cfg.epsilon)


def channel_distance_matrix(masks: Sequence[tuple[float, Mask]]) -> pd.DataFrame:
    """Distance between the channel masks of every pair of epochs (You et al.'s mask-distance
    matrix): rows and columns are epochs."""
    epochs = [e for e, _ in masks]
    flat = torch.stack([torch.cat([m[n].flatten() for n in m]) for _, m in masks])
    matrix = (flat[:, None, :] ^ flat[None, :, :]).float().mean(-1)
    return pd.DataFrame(matrix.numpy(), index=epochs, columns=epochs)


def main_run_trajectory(ctx: Context) -> tuple[SolutionFiles | None, str]:
    """The main run's dense level 0, when it has per-epoch weights and BatchNorm; and a line
    saying what is used, or why it cannot be."""
    files = ImpResults(ctx.store).level(0)
    p = ctx.params
    what = f"the main run's dense level 0 ({p.model.arch} on {p.data.dataset})"
    if not files.done():
        return None, (f"{what} is not trained yet: run notebooks/01_train_imp.ipynb with "
                      f"{p.source} first for You et al.'s channel masks")
    if len(files.trajectory_epochs()) < 2:
        return None, (f"{what} kept no per-epoch weights: You et al.'s rule needs imp.save_every "
                      f">= 1 and level 0 in imp.trajectory_levels (a new run.name, then "
                      f"notebook 01)")
    if not bn_scale_names(ctx.new_model()):
        return None, f"{what} has no BatchNorm, so no channel masks"
    return files, f"{what}, {len(files.trajectory_epochs())} kept epochs"


def early_birds(ctx: Context, mlp: Context
                ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None, str]:
    """The early-bird tables of notebook 10: weight masks of the MNIST MLP's dense run and, when
    the main run has them, channel and weight masks of its dense level 0; the channel masks'
    distance matrix (or None); and a line saying which runs were used."""
    cfg = ctx.params.mnist.early_bird
    tables = {"MLP (MNIST), weight masks": weight_early_bird(ImpResults(mlp.store).level(0), cfg)}
    files, note = main_run_trajectory(ctx)
    matrix = None
    if files is not None:
        masks = channel_masks(files, bn_scale_names(ctx.new_model()), cfg.channel_ratio)
        tables["main run, channel masks (You et al.)"] = channel_early_bird(masks, cfg)
        tables["main run, weight masks"] = weight_early_bird(files, cfg)
        matrix = channel_distance_matrix(masks)
    return tables, matrix, note


def early_bird_summary(tables: Mapping[str, pd.DataFrame], epsilon: float) -> pd.DataFrame:
    """One row per run and kind of mask: the epoch the ticket is drawn at during training (You
    et al.'s rule), the epoch from which the mask stays settled (hindsight), the last epoch."""
    rows = []
    for name, t in tables.items():
        last = float(t["epoch"].iloc[-1]) if len(t) else None
        drawn = drawn_epoch(t) if len(t) else None
        rows.append({"masks": name, "last_epoch": last, "drawn_epoch": drawn,
                     "drawn_at_%_of_training": None if drawn is None or not last
                     else 100 * drawn / last,
                     "settled_epoch": settled_epoch(t, epsilon) if len(t) else None,
                     "last_distance": float(t["distance"].iloc[-1]) if len(t) else None})
    return pd.DataFrame(rows).set_index("masks")


# --- Bain: early stopping on a validation split ---------------------------------------------------

def split_validation(data: ImageData, size: int, seed: int) -> tuple[ImageData, ImageData]:
    """(training part, validation part) of the training set: `size` seeded examples held out.

    The validation part holds them as its training split (evaluate it on "train"); both keep
    the test set.
    """
    if not 1 <= size < data.num_train:
        raise ValueError(f"bain.early_stopping.validation_size: {size} must be below the "
                         f"{data.num_train} training examples")
    g = torch.Generator().manual_seed(derive_seed(seed, "validation-split"))
    perm = torch.randperm(data.num_train, generator=g)
    return data.select(perm[size:].sort().values), data.select(perm[:size].sort().values)


class _Carve:
    """A sub-run's `select`: keeps the training part, remembers the validation part."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed = size, seed
        self.validation: ImageData | None = None

    def __call__(self, data: ImageData) -> ImageData:
        train_part, self.validation = split_validation(data, self.size, self.seed)
        return train_part


class EarlyStopper:
    """The `on_epoch` hook of early stopping: validation loss after every epoch; the best state
    so far, its epoch and the count of epochs without improvement, saved (atomically) after every
    epoch, so a killed round resumes with them. Returns True when `patience` runs out.

    Training writes its checkpoint right after this hook: after a kill between the two, the
    round replays that epoch, and the hook answers from what it saved. On the CPU (and on CUDA
    with run.deterministic) the replayed epoch is bit for bit the one the hook saw; otherwise on
    CUDA it differs in rounding, and the saved answer (stop or not, the best state) stands.
    """

    def __init__(self, path: Path, validation: ImageData, patience: int | None, batch_size: int):
        self.path, self.validation = path, validation
        self.patience, self.batch_size = patience, batch_size
        self.state: dict | None = load_tensors(path) if path.exists() else None

    def __call__(self, epoch: int, model: nn.Module) -> bool:
        s = self.state
        if s is not None and epoch <= s["epoch"]:  # replayed after a kill: already counted
            return bool(s["stopped"]) and epoch == s["epoch"]
        loss, acc = evaluate(model, self.validation, "train", self.batch_size)
        improved = s is None or loss < s["best_loss"]
        bad = 0 if improved else s["bad_epochs"] + 1
        self.state = {
            "epoch": epoch, "bad_epochs": bad,
            "stopped": self.patience is not None and bad >= self.patience,
            "best_epoch": epoch if improved else s["best_epoch"],
            "best_loss": loss if improved else s["best_loss"],
            "best_acc": acc if improved else s["best_acc"],
            "best_state": _cpu_state(model) if improved else s["best_state"],
            "history": [*(s["history"] if s else []),
                        {"epoch": epoch, "val_loss": loss, "val_acc": acc}]}
        save_tensors(self.path, self.state)
        return self.state["stopped"]

    def stopped_history(self, checkpoint: Checkpoint) -> list[dict] | None:
        """The training history of a round that stopped and checkpointed its last epoch before a
        kill (nothing left to train), else None."""
        if self.state is None or not self.state["stopped"]:
            return None
        saved = checkpoint.load()
        if saved is not None and saved["epoch"] + 1 >= self.state["epoch"]:
            return saved["history"]
        return None

    def summary(self) -> dict:
        s = self.state
        return {"best_epoch": s["best_epoch"], "best_val_loss": s["best_loss"],
                "best_val_acc": s["best_acc"], "last_epoch": s["epoch"],
                "stopped_early": s["stopped"], "patience": self.patience,
                "validation_size": self.validation.num_train, "history": s["history"]}


def train_early_stopped(ctx: Context, files: SolutionFiles, *, tag: str, mask: Mask,
                        start: dict[str, torch.Tensor], start_iteration: int,
                        validation: ImageData, patience: int | None,
                        cfg: TrainSection | None = None, keep_trajectory: bool = False, on_iteration=None,
                        progress: bool = True) -> dict:
    """`imp.train_solution` that keeps the epoch with the lowest validation loss as the solution.

    The kept epoch, its validation loss and the per-epoch validation losses go to
    early_stopping.json beside the solution (written before metrics.json, the marker of a
    finished solution). Returns the metrics (of the kept state).
    """
    p = ctx.params
    cfg = cfg or p.train
    model = _start_model(ctx, files, mask, start)
    stopper = EarlyStopper(files.folder / "early_stopping.pt", validation, patience,
                           cfg.eval_batch_size)
    checkpoint = Checkpoint(files.resume_file)
    save_every = p.imp.save_every if keep_trajectory else 0
    if save_every and not files.start_file.exists():
        ipe = ctx.data.iterations_per_epoch(cfg.batch_size)
        save_tensors(files.start_file, {"epoch": start_iteration / ipe, "state": _cpu_state(model)})

    def on_epoch(epoch: int, m: nn.Module) -> bool:
        if save_every and (epoch % save_every == 0 or epoch == cfg.epochs):
            save_tensors(files.epoch_file(epoch), _cpu_state(m))
        return stopper(epoch, m)

    history = stopper.stopped_history(checkpoint)
    if history is None:
        history = train(model, ctx.data, cfg, seed=p.run.seed, tag=tag, mask=mask,
                        start_iteration=start_iteration, augment=p.data.augment,
                        checkpoint=checkpoint, on_iteration=on_iteration, on_epoch=on_epoch,
                        progress=progress)
    if stopper.state is None:
        raise RuntimeError(f"{files.folder}: no epoch was trained, so early stopping has nothing "
                           f"to keep (start iteration {start_iteration})")
    model.load_state_dict(stopper.state["best_state"])
    save_json(files.folder / EARLY_STOPPING_FILE, stopper.summary())
    metrics = finish_solution(ctx, files, model, tag=tag, mask=mask, history=history, cfg=cfg,
                              start_iteration=start_iteration)
    stopper.path.unlink(missing_ok=True)
    return metrics


# --- Bain: winning against random tickets -------------------------------------------------------

def _stopping_spec(params: Params) -> dict | str:
    es = params.bain.early_stopping
    return es.model_dump() if es.enabled else "off"


def bain_tickets(ctx: Context, progress: bool = True) -> Context:
    """LeNet-5 IMP tickets (rewinding to initialization) and random tickets of the same sparsity.

    A random ticket of level L is a random mask with m_L's per-layer counts (scope layerwise) on
    the same initialization, i.e. the `random_prune_oneshot` baseline with k = 0. With
    `bain.early_stopping` (Bain: "the best models were obtained using early stopping"), both are
    trained on the training set less a validation split, and the kept model of each round is
    its epoch of lowest validation loss; the next round prunes that model.
    """
    b = ctx.params.bain
    es = b.early_stopping
    carve = _Carve(es.validation_size, ctx.params.run.seed) if es.enabled else None
    sub = sub_run(ctx, "bain", select=carve, data=b.data, model=b.model, train=b.train, imp=b.imp)
    _claim_stopping(sub)
    levels = [lv for lv in sub.params.levels(b.random_levels) if lv >= 1]
    if carve is None:
        run_imp(sub, progress=progress)
        if levels:
            run_baselines(sub, kinds=[RANDOM_TICKET], levels=levels, progress=progress,
                          together=False)
        return sub
    validation = _validation_of(sub, carve)
    _bain_imp(sub, validation, es.patience, progress)
    _bain_random_tickets(sub, levels, validation, es.patience, progress)
    return sub


def _claim_stopping(sub: Context) -> None:
    """Refuse to mix rounds kept by early stopping with rounds that were not (in either order).

    A folder whose training started before early stopping existed has no claim: it is claimed
    as "off" first (new folders are claimed before their first round starts).
    """
    folder = sub.store.root / "imp"
    if not (folder / "spec.json").exists() and ImpResults(sub.store).level(0).folder.exists():
        sub.store.claim(folder, {"early_stopping": "off"}, "a run folder made before early "
                        "stopping existed")
    sub.store.claim(folder, {"early_stopping": _stopping_spec(sub.params)}, sub.params.source)


def _validation_of(sub: Context, carve: _Carve) -> ImageData:
    _ = sub.data  # loading the sub-run's data carves the validation split
    assert carve.validation is not None
    return carve.validation


def _bain_imp(sub: Context, validation: ImageData, patience: int | None, progress: bool) -> None:
    """`imp.run_imp` with every round kept by early stopping."""
    run_imp(sub, progress=progress,
            train_level=functools.partial(train_early_stopped, validation=validation,
                                          patience=patience),
            report=lambda level, files, metrics: _report(f"level {level:2d}", files, metrics))


def _bain_random_tickets(sub: Context, levels: list[int], validation: ImageData,
                         patience: int | None, progress: bool) -> None:
    """`run_baselines` for the random tickets, each kept by early stopping."""
    imp, results = ImpResults(sub.store), BaselineResults(sub.store)
    for level in levels:
        files = results.files(RANDOM_TICKET, level)
        if files.done():
            continue
        plan = baseline_plan(sub, imp, RANDOM_TICKET, level)
        sub.store.claim(files.folder, {"kind": plan.kind, "level": level,
                                       "start_iteration": plan.start_iteration,
                                       "epochs": plan.cfg.epochs, "lr": plan.cfg.lr,
                                       "milestones": plan.cfg.milestones,
                                       "early_stopping": _stopping_spec(sub.params)},
                        sub.params.source)
        tag = f"baselines/{RANDOM_TICKET}/level_{level:02d}"
        metrics = train_early_stopped(sub, files, tag=tag, mask=plan.mask, start=plan.start,
                                      start_iteration=plan.start_iteration, cfg=plan.cfg,
                                      validation=validation, patience=patience, progress=progress)
        _report(f"level {level:2d} random ticket", files, metrics)


def _report(what: str, files: SolutionFiles, metrics: dict) -> None:
    f = metrics["final"]
    print(f"{what}: {100 * f['density']:6.2f}% weights left, kept epoch {_kept_epoch(files)}, "
          f"test acc {f['test_acc']:.4f}")


def bain_protocol(params: Params) -> str:
    """What notebook 11 used, in words: the surfaces' examples and each round's kept model."""
    b, lp = params.bain, params.landscape
    if b.surface_split == "test":
        where = f"{lp.surface_examples} images drawn (seeded) from the test set, as Bain"
    else:
        where = (f"{lp.surface_examples} images of the training set's analysis subset "
                 f"(Bain used test images)")
    es = b.early_stopping
    if es.enabled:
        stop = ("no early stop: every round trains all its epochs" if es.patience is None
                else f"a round stops after {es.patience} epochs without improvement")
        kept = (f"the epoch of lowest loss on {es.validation_size} training images held out as "
                f"a validation split, as Bain ({stop})")
    else:
        kept = "the last epoch of each round (Bain kept the best by early stopping)"
    return f"surfaces evaluated on {where}; kept model of each round: {kept}"


def accuracy_table(sub: Context) -> pd.DataFrame:
    """Test accuracy of IMP and random tickets per level, and their gap (Bain's Fig 5, Sec. 7)."""
    table = tickets_table(sub, control=RANDOM_TICKET)
    if "control_test_acc" in table:
        table["gap"] = table["ticket_test_acc"] - table["control_test_acc"]
    return table.rename(columns=lambda c: c.replace("control", "random"))


def bain_pairs(sub: Context, levels: list[int]) -> list[int]:
    """The levels of `levels` at which both an IMP ticket and a random ticket are trained."""
    have = {lv for kind, lv in BaselineResults(sub.store).available() if kind == RANDOM_TICKET}
    done = set(ImpResults(sub.store).levels_done())
    return [lv for lv in levels if lv in have and lv in done]


def shown_levels(sub: Context) -> list[int]:
    """The levels of `bain.show_levels` that have both tickets (those get surfaces and curves)."""
    return bain_pairs(sub, sub.params.levels(sub.params.bain.show_levels))


def _ticket_files(sub: Context, level: int) -> dict[str, SolutionFiles]:
    """The IMP ticket's and (when trained) the random ticket's files of one level, labelled."""
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    left = 100 * imp.metrics(level)["final"]["density"]
    out = {f"IMP ticket ({left:.1f}% left)": imp.level(level)}
    if (RANDOM_TICKET, level) in base.available():
        out[f"random ticket ({left:.1f}% left)"] = base.files(RANDOM_TICKET, level)
    return out


def ticket_histories(sub: Context, level: int) -> dict[str, list[dict]]:
    """Per-epoch training records of the IMP ticket and the random ticket of one level."""
    return {label: files.metrics()["history"] for label, files in _ticket_files(sub, level).items()}


def kept_iterations(sub: Context, level: int) -> dict[str, int]:
    """The training iteration of the epoch early stopping kept, per ticket of one level (empty
    without early stopping)."""
    out = {}
    for label, files in _ticket_files(sub, level).items():
        kept = _kept_epoch(files)
        if kept is not None:
            out[label] = next(h["iteration"] for h in files.metrics()["history"]
                              if h["epoch"] == kept)
    return out


def ticket_surfaces(land, level: int, examples: int | None = None) -> dict[str, tuple[dict, str]]:
    """Filter-normalized surfaces of the IMP ("ticket") and the random ticket ("random") of a
    level, with titles that give each one's test accuracy (Bain's Figs 6 and 7). `land` is a
    `Landscape` of the sub-run.
    """
    from .landscape import PointRef

    imp, base = land.imp, land.baselines
    out = {}
    refs = {"ticket": PointRef("imp", level)}
    if (RANDOM_TICKET, level) in base.available():
        refs["random"] = PointRef(RANDOM_TICKET, level)
    for key, ref in refs.items():
        final = (imp.metrics(level) if ref.kind == "imp" else base.metrics(ref.kind, level))["final"]
        name = "IMP ticket" if ref.kind == "imp" else "random ticket"
        title = (f"{name}, {100 * final['density']:.1f}% left\n"
                 f"test acc {100 * final['test_acc']:.1f}%")
        out[key] = (land.surface(ref, examples=examples), title)
    return out


def surface_stats(surface: Mapping) -> dict[str, float]:
    """Numbers for Bain's words about a surface, at its grid point nearest the solution:

    * `center_loss`: the loss there;
    * `rise`: the mean loss on the grid's border minus `center_loss` (how deep the basin is in
      the plotted window; "shallow" is a small rise);
    * `curvature`: the second difference there, averaged over both directions, per unit of the
      filter-normalized coordinates ("sharp" is a large curvature, "flat" a small one).
    """
    x = torch.as_tensor(surface["x"], dtype=torch.float64)
    loss = torch.as_tensor(surface["loss"], dtype=torch.float64)
    c = int(x.abs().argmin())
    center = loss[c, c]
    border = torch.cat([loss[0], loss[-1], loss[1:-1, 0], loss[1:-1, -1]])
    if 0 < c < len(x) - 1:
        h = float(x[1] - x[0])
        second = (loss[c, c - 1] + loss[c, c + 1] + loss[c - 1, c] + loss[c + 1, c] - 4 * center)
        curvature = float(second / (2 * h * h))
    else:
        curvature = float("nan")
    return {"center_loss": float(center), "rise": float(border.mean() - center),
            "curvature": curvature}


def surface_table(surfaces: Mapping[int, Mapping[str, tuple[dict, str]]]) -> pd.DataFrame:
    """Per level: `surface_stats` of the IMP ticket and of the random ticket side by side."""
    rows = []
    for level, pair in surfaces.items():
        row: dict = {"level": level}
        for key, (surface, _) in pair.items():
            row |= {f"{key}_{k}": v for k, v in surface_stats(surface).items()}
        row["examples"] = next(iter(pair.values()))[0]["examples"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("level") if rows else pd.DataFrame()


def sweep_sizes(sub: Context) -> list[int]:
    """Examples per surface in the plot of how a surface settles (`bain.subsample_sizes`),
    capped at what the surfaces' split holds (the test set, or the analysis subset)."""
    p = sub.params
    if p.bain.surface_split == "test":
        cap = int(sub.data.test_y.numel())
    else:
        cap = min(p.analysis.subset_size, sub.data.num_train)
    return sorted({min(n, cap) for n in p.bain.subsample_sizes})


def sweep_level(shown: Sequence[int]) -> int:
    """The level whose IMP ticket the subsample sweep uses: the sparsest shown, else level 0."""
    return shown[-1] if shown else 0
