"""Iterative magnitude pruning with weight rewinding (IMP-WR), resumable level by level.

Level 0 trains the dense network from W_init and keeps W_rewind, the weights after k iterations.
Level L >= 1 prunes a fraction p of the alive weights of W_min(L-1) by magnitude (m_L nested in
m_{L-1}), then trains m_L ⊙ W_rewind from iteration k to the end of the schedule, mask fixed.
Each level's folder holds its mask, W_min(L), the metrics and the trajectory (weights every
`imp.save_every` epochs). A finished level is never retrained; a level in progress resumes from
its last finished epoch.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pandas as pd
import torch
from torch import nn

from lthkit.config.series import TRAIN_IMP, notebook_file
from lthkit.nets.pruning import (Mask, count_alive, count_total, density, full_mask, layer_report,
                                 magnitude_prune, masked_state)
from lthkit.store.files import load_json, load_tensors, save_bytes, save_json, save_tensors
from lthkit.store.layout import RunStore
from lthkit.store.paths import CHECKSUMS, written_by
from lthkit.train.context import Context, open_run
from lthkit.train.training import Checkpoint, Member, evaluate, train, train_group

if TYPE_CHECKING:
    from lthkit.config.params import Params
    from lthkit.platform.executor import Executor

__all__ = ["run_imp", "ImpResults", "train_solution", "train_solutions_together", "SolutionFiles",
           "run_imp_replicates", "ImpUnit", "train_imp_unit", "scratch_run", "write_unit_files",
           "finished_imp_files", "solution_files"]

MADE_BY = notebook_file(TRAIN_IMP)


class SolutionFiles:
    """The files of one trained solution (an IMP level or a baseline) in its folder."""

    def __init__(self, folder: Path, made_by: str = MADE_BY):
        self.folder = folder
        self.made_by = made_by

    mask_file = property(lambda self: self.folder / "mask.pt")
    final_file = property(lambda self: self.folder / "final.pt")
    metrics_file = property(lambda self: self.folder / "metrics.json")
    resume_file = property(lambda self: self.folder / "resume.pt")
    epochs_dir = property(lambda self: self.folder / "epochs")
    start_file = property(lambda self: self.folder / "epochs" / "start.pt")

    def done(self) -> bool:
        """metrics.json is written last, so its presence marks a finished solution."""
        return self.metrics_file.exists()

    def _require(self, path: Path) -> Path:
        if not path.exists():
            raise _missing(path, self.made_by)
        return path

    def mask(self) -> Mask:
        return load_tensors(self._require(self.mask_file))

    def final(self) -> dict[str, torch.Tensor]:
        self._require(self.metrics_file)
        return load_tensors(self._require(self.final_file))

    def metrics(self) -> dict:
        return load_json(self._require(self.metrics_file))

    def epoch_file(self, epoch: int) -> Path:
        return self.epochs_dir / f"epoch_{epoch:04d}.pt"

    def trajectory_epochs(self) -> list[int]:
        if not self.epochs_dir.exists():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in self.epochs_dir.glob("epoch_*.pt"))

    def trajectory(self) -> Iterator[tuple[float, dict[str, torch.Tensor]]]:
        """(epoch, state dict) from the starting point through every kept epoch, one at a time.

        The starting point's epoch is fractional when training started mid-epoch (iteration k).
        """
        if self.start_file.exists():
            start = load_tensors(self.start_file)
            yield float(start["epoch"]), start["state"]
        for e in self.trajectory_epochs():
            yield float(e), load_tensors(self.epoch_file(e))


def _missing(path: Path, made_by: str) -> FileNotFoundError:
    from lthkit.store.layout import MissingInputError

    return MissingInputError(f"{path} is missing: run {made_by} first (it trains and saves it)")


class ImpResults:
    """Read access to the IMP levels of a run folder."""

    def __init__(self, store: RunStore):
        self.store = store

    @property
    def made_by(self) -> str:
        """The notebook that trains these levels: 10's or 11's for their sub-runs, else 01."""
        root = getattr(self.store, "root", None)
        return notebook_file(written_by(root) if root is not None else TRAIN_IMP)

    def level(self, level: int) -> SolutionFiles:
        return SolutionFiles(self.store.imp_dir(level), made_by=self.made_by)

    def levels_done(self) -> list[int]:
        done = []
        level = 0
        while self.level(level).done():
            done.append(level)
            level += 1
        return done

    def mask(self, level: int) -> Mask:
        return self.level(level).mask()

    def final(self, level: int) -> dict[str, torch.Tensor]:
        """W_min(level) as a state dict (weights and BatchNorm statistics)."""
        return self.level(level).final()

    def metrics(self, level: int) -> dict:
        return self.level(level).metrics()

    def init(self) -> dict[str, torch.Tensor]:
        return load_tensors(self.store.require(self.store.path("imp", "init.pt"), self.made_by))

    def rewind(self) -> dict[str, torch.Tensor]:
        """W_rewind: the dense weights after k iterations of level 0."""
        return load_tensors(self.store.require(self.store.path("imp", "rewind.pt"), self.made_by))

    def require_levels(self, levels: list[int], needed_by: str) -> None:
        """Stop with a clear error when a level an analysis needs has not been trained."""
        done = set(self.levels_done())
        missing = [lv for lv in levels if lv not in done]
        if missing:
            raise _missing(self.store.imp_dir(missing[0]) / "metrics.json",
                           f"{self.made_by} (levels {missing} are not trained yet; {needed_by} "
                           f"needs them)")

    def summary(self) -> pd.DataFrame:
        """One row per finished level: sparsity and final training / test metrics (Fig 1)."""
        rows = []
        for level in self.levels_done():
            m = self.metrics(level)["final"]
            rows.append({"level": level, "weights_left_%": 100 * m["density"], "alive": m["alive"],
                         "train_loss": m["train_loss"], "train_acc": m["train_acc"],
                         "test_loss": m["test_loss"], "test_acc": m["test_acc"],
                         "minutes": m["seconds"] / 60, **_measured_there(m)})
        return pd.DataFrame(rows).set_index("level") if rows else pd.DataFrame()


def _measured_there(final: dict) -> dict:
    """What an imported run measured itself at a level's end (open_lth's logger), beside the
    kit's measurement in the summary; nothing for a level the kit trained."""
    there = final.get("open_lth", {})
    return {f"open_lth_{k}": there[k] for k in ("test_loss", "test_acc") if k in there}


def train_solution(ctx: Context, files: SolutionFiles, *, tag: str, mask: Mask,
                   start: dict[str, torch.Tensor], start_iteration: int, cfg=None,
                   keep_trajectory: bool = False, on_iteration=None, progress: bool = True) -> dict:
    """Train m ⊙ start from `start_iteration` with `mask` fixed and store it in `files.folder`.

    Writes mask.pt first, the trajectory and resume.pt while training, then final.pt and last
    metrics.json (the marker of a finished solution). Returns the metrics.
    """
    p = ctx.params
    cfg = cfg or p.train
    model = _start_model(ctx, files, mask, start)
    save_every = p.imp.save_every if keep_trajectory else 0

    def on_epoch(epoch: int, m: nn.Module) -> None:
        if save_every and (epoch % save_every == 0 or epoch == cfg.epochs):
            save_tensors(files.epoch_file(epoch), _cpu_state(m))

    if save_every and not files.start_file.exists():  # the trajectory's starting point
        ipe = ctx.data.iterations_per_epoch(cfg.batch_size)
        save_tensors(files.start_file, {"epoch": start_iteration / ipe, "state": _cpu_state(model)})
    history = train(model, ctx.data, cfg, seed=p.run.seed, tag=tag, mask=mask,
                    start_iteration=start_iteration, augment=p.data.augment,
                    checkpoint=Checkpoint(files.resume_file), on_iteration=on_iteration,
                    on_epoch=on_epoch, progress=progress)
    return finish_solution(ctx, files, model, tag=tag, mask=mask, history=history, cfg=cfg,
                           start_iteration=start_iteration)


def train_solutions_together(ctx: Context, jobs: list[dict], cfg, progress: bool = True,
                             channels_last: bool | None = None) -> list[dict]:
    """Train several solutions of one schedule at once (`training.train_group`).

    Each job holds files, tag, mask, start and start_iteration (as `train_solution` takes them),
    and may hold its own data-order `seed` (default: the run's). All must be at one iteration of
    the schedule. Each member resumes from, and writes, its own resume.pt, final.pt and
    metrics.json exactly as `train_solution` does, so it can resume alone or in another group.
    `channels_last`: the fused network's layout (the group probe's choice; None: the parameter's).
    Returns the metrics of each.
    """
    p = ctx.params
    members = [Member(model=_start_model(ctx, j["files"], j["mask"], j["start"]), tag=j["tag"],
                      seed=j.get("seed", p.run.seed), mask=j["mask"],
                      start_iteration=j["start_iteration"],
                      checkpoint=Checkpoint(j["files"].resume_file)) for j in jobs]
    histories = train_group(members, ctx.data, cfg, augment=p.data.augment, progress=progress,
                            channels_last=channels_last)
    return [finish_solution(ctx, j["files"], m.model, tag=j["tag"], mask=j["mask"], history=h,
                            cfg=cfg, start_iteration=j["start_iteration"])
            for j, m, h in zip(jobs, members, histories)]


def _start_model(ctx: Context, files: SolutionFiles, mask: Mask,
                 start: dict[str, torch.Tensor]) -> nn.Module:
    """Save the mask (once) and return a model holding m ⊙ start."""
    if not files.mask_file.exists():
        save_tensors(files.mask_file, mask)
    model = ctx.new_model()
    model.load_state_dict(masked_state(start, mask))
    return model


def finish_solution(ctx: Context, files: SolutionFiles, model: nn.Module, *, tag: str, mask: Mask,
                    history: list[dict], cfg, start_iteration: int, seconds: float | None = None,
                    extra: dict | None = None) -> dict:
    """Measure a trained solution, write final.pt and then metrics.json; returns the metrics.
    `seconds`: the training time when the history does not hold it (an import); `extra`: more
    entries of the final metrics (what an imported run measured itself)."""
    if seconds is None:
        seconds = sum(h["seconds"] for h in history)  # every epoch's, also those before a resume
    train_loss, train_acc = evaluate(model, ctx.data, "train", cfg.eval_batch_size)
    test_loss, test_acc = evaluate(model, ctx.data, "test", cfg.eval_batch_size)
    final = {"train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss,
             "test_acc": test_acc, "alive": count_alive(mask), "total": count_total(mask),
             "density": density(mask), "sparsity": 1 - density(mask), "seconds": seconds,
             "start_iteration": start_iteration, **(extra or {})}
    metrics = {"tag": tag, "final": final, "history": history, "layers": layer_report(mask)}
    save_tensors(files.final_file, _cpu_state(model))
    save_json(files.metrics_file, metrics)
    files.resume_file.unlink(missing_ok=True)
    return metrics


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def run_imp(ctx: Context, progress: bool = True, levels: int | None = None,
            train_level: Callable[..., dict] | None = None,
            report: Callable[[int, SolutionFiles, dict], None] | None = None) -> ImpResults:
    """Train every IMP level that is not finished yet (all of them up to `imp.levels`).

    `train_level` trains one level (default `train_solution`; it takes the same arguments), so a
    variant of the protocol (Bain's early stopping) reuses the loop; `report` prints a level."""
    p = ctx.params
    train_level = train_level or train_solution
    report = report or _report_level
    results = ImpResults(ctx.store)
    last = p.imp.levels if levels is None else levels
    trajectory_levels = set(p.levels(p.imp.trajectory_levels))
    for level in range(last + 1):
        files = results.level(level)
        if files.done():
            continue
        if level == 0:
            mask, start, start_it, hook = _level_zero(ctx, results)
        else:
            mask = _next_mask(ctx, results, level)
            start, start_it, hook = results.rewind(), p.imp.rewind_iteration, None
        metrics = train_level(ctx, files, tag=f"imp/level_{level:02d}", mask=mask, start=start,
                              start_iteration=start_it, keep_trajectory=level in trajectory_levels,
                              on_iteration=hook, progress=progress)
        report(level, files, metrics)
    return results


def _report_level(level: int, files: SolutionFiles, metrics: dict) -> None:
    f = metrics["final"]
    print(f"level {level:2d}: {100 * f['density']:6.2f}% weights left, train loss "
          f"{f['train_loss']:.4f}, test acc {f['test_acc']:.4f} ({f['seconds'] / 60:.1f} min)")


def _level_zero(ctx: Context, results: ImpResults):
    """Dense mask, W_init (saved once), and a hook that saves W_rewind at iteration k."""
    p = ctx.params
    init_file = ctx.store.path("imp", "init.pt")
    rewind_file = ctx.store.path("imp", "rewind.pt")
    total = p.train.epochs * ctx.data.iterations_per_epoch(p.train.batch_size)
    k = p.imp.rewind_iteration
    if k >= total:
        raise ValueError(f"{p.source}: imp.rewind_iteration: {k} is not before the end of training "
                         f"({p.train.epochs} epochs x {total // p.train.epochs} iterations = {total})")
    if not init_file.exists():
        save_tensors(init_file, _cpu_state(ctx.new_model()))
    init = load_tensors(init_file)
    mask = full_mask(ctx.new_model())
    if k == 0 and not rewind_file.exists():
        save_tensors(rewind_file, init)

    def save_rewind(iteration: int, model: nn.Module) -> None:
        if iteration == k:
            save_tensors(rewind_file, _cpu_state(model))

    return mask, init, 0, save_rewind


def _next_mask(ctx: Context, results: ImpResults, level: int) -> Mask:
    """m_level: magnitude pruning of W_min(level-1) within m_{level-1} (made once, then read)."""
    files = results.level(level)
    if files.mask_file.exists():
        return files.mask()
    p = ctx.params
    mask = magnitude_prune(results.final(level - 1), results.mask(level - 1),
                           fraction=p.imp.prune_fraction, scope=p.imp.scope)
    save_tensors(files.mask_file, mask)
    return mask


# --- the replicates' IMP chains as units of an executor (lthkit.platform.executor) ---------------

@dataclass(frozen=True)
class ImpUnit:
    """One replicate's IMP chain up to level `levels`, with the files of the levels its run
    folder already holds ({path relative to the replicate's folder: bytes}), to go on from."""

    params: "Params"
    replicate: int
    levels: int
    given: dict[str, bytes]

    @property
    def label(self) -> str:
        return f"replicate {self.replicate} IMP chain"


@contextmanager
def scratch_run(params: "Params", replicate: int, given: dict[str, bytes]) -> Iterator[Context]:
    """A replicate's context in a temporary run folder of a worker, holding the `given` files
    ({path relative to the replicate's folder: bytes}); removed on exit."""
    with tempfile.TemporaryDirectory(prefix="lthkit-unit-") as scratch:
        run = params.run.model_copy(update={"output_root": scratch})
        ctx = open_run(params.model_copy(update={"run": run}), create=True, replicate=replicate)
        for rel, data in given.items():
            save_bytes(ctx.store.root / rel, data)
        yield ctx


def train_imp_unit(unit: ImpUnit) -> Iterator[dict[str, bytes]]:
    """Train a replicate's chain in a scratch run folder (a temporary directory of the worker),
    yielding the files of each level as it finishes (with W_init and W_rewind the first time),
    those that were not given. Writes nothing that stays."""
    with scratch_run(unit.params, unit.replicate, unit.given) as ctx:
        sent = set(unit.given)
        for level in range(unit.levels + 1):
            run_imp(ctx, progress=False, levels=level)  # the levels before are done: skipped
            files = {rel: data for rel, data in finished_imp_files(ctx.store, [level]).items()
                     if rel not in sent}
            if files:
                sent |= files.keys()
                yield files


def solution_files(folder: Path, trajectory: bool = True) -> list[Path]:
    """A finished solution's files (mask, W_min, with `trajectory` its epochs/), metrics.json
    (the marker of a finished solution) last; no resume.pt, checksums or temporary files."""
    inside = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in
              (CHECKSUMS, "resume.pt", "metrics.json", "spec.json") and not p.name.startswith(".")
              and (trajectory or p.parent == folder)]
    return [*inside, folder / "metrics.json"]


def finished_imp_files(store: RunStore, levels: list[int] | None = None,
                       trajectory: bool = True) -> dict[str, bytes]:
    """The files of a run folder's finished IMP levels (all, or `levels`) and its W_init and
    W_rewind, as {path relative to the folder: bytes}, in the order to write them."""
    imp = store.root / "imp"
    files = [imp / name for name in ("init.pt", "rewind.pt") if (imp / name).is_file()]
    for level in ImpResults(store).levels_done() if levels is None else levels:
        files += solution_files(store.imp_dir(level), trajectory)
    return {p.relative_to(store.root).as_posix(): p.read_bytes() for p in files}


def write_unit_files(store: RunStore, files: dict[str, bytes], under: str) -> None:
    """Write a unit's returned files into a replicate's run folder (atomically, checksummed), in
    the order given (a solution's metrics.json last); a finished solution's resume.pt goes."""
    for rel, data in files.items():
        path = store.root / rel
        if not path.resolve().is_relative_to(store.root.resolve() / under):
            raise ValueError(f"{rel}: a unit returned a file outside {under}/ of {store.root}")
        save_bytes(path, data)
        if path.name == "metrics.json":
            (path.parent / "resume.pt").unlink(missing_ok=True)


def run_imp_replicates(params: "Params", executor: "Executor",
                       train_unit: Callable[[ImpUnit], Iterator[dict[str, bytes]]]
                       = train_imp_unit,
                       levels: int | None = None) -> list[int]:
    """Train the IMP chains of every replicate of the run (`run.replicates`) that has levels left,
    one unit of `executor` each (levels stay in order inside a chain); returns those trained.

    Each unit yields the files of each level as it finishes and this process writes them into the
    replicate's folder at once, so a unit that fails loses only the level under way: a rerun skips
    the chains that are done and goes on from the finished levels of the others. `train_unit`
    (default `train_imp_unit`) runs on the worker.
    """
    last = params.imp.levels if levels is None else levels
    stores: list[RunStore] = []
    units: list[ImpUnit] = []
    for r in range(params.run.replicates):
        store = open_run(params, create=True, replicate=r).store
        done = ImpResults(store).levels_done()
        if len(done) > last:
            continue
        stores.append(store)
        units.append(ImpUnit(params, r, last, finished_imp_files(store)))
    if units:
        executor.map(train_unit, units, desc="IMP chains (replicates)",
                     on_result=lambda i, files: write_unit_files(stores[i], files, "imp"))
    return [u.replicate for u in units]
