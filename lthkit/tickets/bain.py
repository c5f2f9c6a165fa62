"""Bain's study: LeNet-5 tickets on CIFAR-10 against random tickets, trained with early stopping on
a validation split, and the loss surfaces of both as pruning continues."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from lthkit.config import Params, derive_seed
from lthkit.config.training import TrainSection
from lthkit.data.images import ImageData
from lthkit.nets.pruning import Mask
from lthkit.store.files import load_tensors, save_json, save_tensors
from lthkit.tickets.common import EARLY_STOPPING_FILE, kept_epoch, tickets_table
from lthkit.train.baselines import BaselineResults, baseline_plan, run_baselines
from lthkit.train.context import Context, sub_run
from lthkit.train.imp import (ImpResults, SolutionFiles, _cpu_state, _start_model, finish_solution,
                              run_imp)
from lthkit.train.training import Checkpoint, evaluate, train

RANDOM_TICKET = "random_prune_oneshot"  # Bain's random ticket: a random mask of m_L's layer counts


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
    print(f"{what}: {100 * f['density']:6.2f}% weights left, kept epoch {kept_epoch(files)}, "
          f"test acc {f['test_acc']:.4f}")


def bain_landscape(sub: Context, progress: bool = True):
    """The `Landscape` of Bain's sub-run with his surfaces' settings: `bain.surface_split`,
    `bain.directions` (dense by default, as his code) and `bain.draw` (one for every level)."""
    from lthkit.analysis.landscape import Landscape

    b = sub.params.bain
    return Landscape(sub, progress=progress, surface_split=b.surface_split,
                     directions=b.directions, draw=b.draw)


def bain_protocol(params: Params) -> str:
    """What notebook 11 used, in words: the surfaces' examples and directions, and each round's
    kept model."""
    b, lp = params.bain, params.landscape
    if b.surface_split == "test":
        where = f"{lp.surface_examples} images drawn (seeded) from the test set, as Bain"
    else:
        where = (f"{lp.surface_examples} images of the training set's analysis subset "
                 f"(Bain used test images)")
    where += (f", a {lp.surface_resolution} x {lp.surface_resolution} grid (Bain: 125 x 125); "
              + ("dense directions on every weight, pruned or not, as Bain"
                 if b.directions == "dense" else
                 "masked directions, zero on each ticket's pruned weights (the kit's extension; "
                 "Bain's are dense)")
              + ("; one random draw for every level, as Bain" if b.draw == "shared" else
                 "; a random draw per level (Bain: one for every level)"))
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
        kept = kept_epoch(files)
        if kept is not None:
            out[label] = next(h["iteration"] for h in files.metrics()["history"]
                              if h["epoch"] == kept)
    return out


def ticket_surfaces(land, level: int, examples: int | None = None) -> dict[str, tuple[dict, str]]:
    """Filter-normalized surfaces of the IMP ("ticket") and the random ticket ("random") of a
    level, with titles that give each one's test accuracy (Bain's Figs 6 and 7). `land` is a
    `Landscape` of the sub-run.
    """
    from lthkit.analysis.landscape import PointRef

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
    """Per level: `surface_stats` of the IMP ticket and of the random ticket side by side, with
    the examples and how the directions were made (dense or masked, one draw or one per level)."""
    rows = []
    for level, pair in surfaces.items():
        row: dict = {"level": level}
        for key, (surface, _) in pair.items():
            row |= {f"{key}_{k}": v for k, v in surface_stats(surface).items()}
        first = next(iter(pair.values()))[0]
        row["examples"] = first["examples"]
        row |= {k: first[k] for k in ("directions", "draw") if k in first}
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
